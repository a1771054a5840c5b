() => {
  if (window.rqaShowSource) return;
  // Gradio's page shows its own English notice when the queue is full (it ignores the server's
  // message); say it in Chinese. Text nodes only: nothing else on the page is touched.
  const busy = /This application is currently busy\.?\s*Please try again\.?/;
  const translate = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!busy.test(node.nodeValue)) continue;
      node.nodeValue = node.nodeValue.replace(busy, BUSY_ZH);
      const toast = node.parentNode && node.parentNode.closest('.toast-body');
      if (toast) toast.querySelectorAll('.toast-title').forEach((title) => {
        for (const t of title.childNodes) if (t.nodeType === Node.TEXT_NODE && t.nodeValue.trim() === 'Error') t.nodeValue = '提示';
      });
    }
  };
  new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach((n) => {
    if (n.nodeType === Node.TEXT_NODE ? busy.test(n.nodeValue) : n.textContent && busy.test(n.textContent)) {
      translate(n.nodeType === Node.TEXT_NODE ? n.parentNode : n);
    }
  }))).observe(document.body, {childList: true, subtree: true, characterData: false});
  const unmark = () => {
    const old = document.getElementById('rqa-hl');
    if (!old) return;
    const parent = old.parentNode;
    parent.replaceChild(document.createTextNode(old.textContent), old);
    parent.normalize();
  };
  window.rqaShowSource = (source, start, end) => {
    const tab = [...document.querySelectorAll('[role=tab]')].find(t => t.textContent.trim() === '报告原文');
    if (tab) tab.click();
    let asked = false;
    const mark = (attempt) => {
      const paras = [...document.querySelectorAll('#rqa-report .rqa-para')];
      const para = paras.find(p => p.dataset.source === source && start >= +p.dataset.start
                                  && start < +p.dataset.start + p.textContent.length);
      if (!para || !para.offsetParent) {
        // Another report is shown: ask the server for this one (once), then keep looking.
        const request = document.querySelector('#rqa-report-request textarea, #rqa-report-request input');
        if (attempt >= 3 && request && !asked && !paras.some(p => p.dataset.source === source)) {
          asked = true;
          request.value = `${source}
${Date.now()}`;  // a new value each time, so it always fires
          request.dispatchEvent(new Event('input', {bubbles: true}));
        }
        if (attempt < 80) setTimeout(() => mark(attempt + 1), 100);
        return;
      }
      unmark();
      const node = para.firstChild, from = start - +para.dataset.start;
      const range = document.createRange();
      range.setStart(node, from);
      range.setEnd(node, Math.min(end - +para.dataset.start, node.textContent.length));
      const hl = document.createElement('mark');
      hl.id = 'rqa-hl';
      hl.tabIndex = -1;
      range.surroundContents(hl);
      hl.scrollIntoView({block: 'center'});
      hl.focus({preventScroll: true});
    };
    mark(0);
  };
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a.rqa-open');
    if (!link) return;
    const m = /^#rqa-src-(\d+)-(\d+)-(.*)$/.exec(link.getAttribute('href') || '');
    if (!m) return;
    event.preventDefault();
    event.stopPropagation();
    window.rqaShowSource(decodeURIComponent(m[3]), +m[1], +m[2]);
  }, true);
}
