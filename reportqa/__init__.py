"""ReportQA: grounded, cited answers from Chinese government reports (the application: settings, service,
CLI, web server)."""
