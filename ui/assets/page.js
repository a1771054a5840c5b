() => {
  if (window.rqaShowSource) return;
  // Gradio's page shows its own English notice when the queue is full (it ignores the server's
  // message), English toast titles (Info, Warning, whatever title the server sent) and, for screen
  // readers, i18n keys its Chinese bundle lacks (common.complete). Say them in Chinese. Text nodes
  // only: nothing else on the page is touched.
  const busy = /This application is currently busy\.?\s*Please try again\.?/;
  const TITLES = {Info: '提示', Warning: '提示', Error: '出错了', Success: '完成'};
  const KEYS = {'common.complete': '已完成', 'common.error': '出错了', 'common.loading': '加载中'};
  const translateNode = (node) => {
    const value = node.nodeValue;
    if (!value || !value.trim()) return;
    if (busy.test(value)) {
      node.nodeValue = value.replace(busy, BUSY_ZH);
      // A full queue is not the citizen's error: its toast is titled 提示, whichever node came first.
      const toast = node.parentNode && node.parentNode.closest && node.parentNode.closest('.toast-body');
      if (toast) toast.querySelectorAll('.toast-title').forEach((t) => t.childNodes.forEach((c) => {
        if (c.nodeType === Node.TEXT_NODE && (c.nodeValue.trim() === 'Error' || c.nodeValue.trim() === '出错了')) c.nodeValue = '提示';
      }));
    }
    const key = value.trim();
    if (KEYS[key]) node.nodeValue = KEYS[key];
    const title = node.parentNode && node.parentNode.closest && node.parentNode.closest('.toast-title');
    if (title && TITLES[key]) {
      const toast = title.closest('.toast-body');
      node.nodeValue = toast && toast.textContent.includes(BUSY_ZH) ? '提示' : TITLES[key];
    }
  };
  const translate = (root) => {
    if (root.nodeType === Node.TEXT_NODE) return translateNode(root);
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) translateNode(node);
  };

  // A chat message is announced by its text in Chinese (Gradio's label is "bot's message: " + the raw HTML).
  const labelMessages = () => {
    const log = document.querySelector('#rqa-chat [role=log][aria-label]');
    if (log && log.getAttribute('aria-label') !== '对话') log.setAttribute('aria-label', '对话');
    document.querySelectorAll('#rqa-chat .message-row [aria-label]:not(button)').forEach((m) => {
      const who = m.closest('.bot-row') ? '回答' : '提问';
      const text = who + '：' + (m.innerText || '').replace(/\s+/g, ' ').trim().slice(0, 300);
      if (m.getAttribute('aria-label') !== text) m.setAttribute('aria-label', text);
    });
  };

  // When an answer arrives its first line comes into view: inside the chat box (Gradio would scroll to
  // the bottom of the long source cards) and on the page (on a phone, after tapping an example question
  // below the chat, the chat is off screen).
  // Keyed by how many answers the chat holds (a re-rendered row, e.g. after a vote, does not scroll again).
  let lastShown = 0, lastFinal = false;
  const scrollableParent = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (/(auto|scroll)/.test(style.overflowY) && p.scrollHeight > p.clientHeight + 1) return p;
    }
    return null;
  };
  const bringIntoView = (answer) => {
    const box = scrollableParent(answer);
    if (box) box.scrollTop += answer.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    const top = answer.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight - 80) window.scrollBy({top: top - 12, behavior: 'instant'});
  };
  const followAnswers = () => {
    const answers = document.querySelectorAll('#rqa-chat .bot-row .rqa-answer, #rqa-chat .bot-row .rqa-error');
    const answer = answers[answers.length - 1];
    if (!answer) return;
    const final = !answer.classList.contains('rqa-partial');
    const count = answers.length;
    if (count === lastShown && (lastFinal || !final)) return;
    if (count < lastShown) { lastShown = count; lastFinal = final; return; }  // a cleared or shortened chat
    lastShown = count;
    lastFinal = final;
    requestAnimationFrame(() => requestAnimationFrame(() => bringIntoView(answer)));
  };

  let pending = false;
  new MutationObserver((changes) => {
    changes.forEach((c) => {
      if (c.type === 'characterData') translateNode(c.target);
      c.addedNodes.forEach((n) => translate(n));
    });
    if (!pending) {
      pending = true;
      requestAnimationFrame(() => { pending = false; labelMessages(); followAnswers(); });
    }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});

  const unmark = () => {
    const old = document.getElementById('rqa-hl');
    if (old && old.tagName === 'MARK') {
      const parent = old.parentNode;
      parent.replaceChild(document.createTextNode(old.textContent), old);
      parent.normalize();
    } else if (old) {
      old.removeAttribute('id');
    }
  };
  // Open the 报告原文 tab and call found(paragraph) once the paragraph of ``source`` holding offset
  // ``start`` is shown (asking the server for that report when another one is on the tab).
  const openAt = (source, start, found) => {
    const tab = [...document.querySelectorAll('[role=tab]')].find(t => t.textContent.trim() === '报告原文');
    if (tab) tab.click();
    let asked = false;
    const look = (attempt) => {
      const paras = [...document.querySelectorAll('#rqa-report .rqa-para')];
      const para = paras.find(p => p.dataset.source === source && start >= +p.dataset.start
                                  && start < +p.dataset.start + p.textContent.length);
      if (!para || !para.offsetParent) {
        const request = document.querySelector('#rqa-report-request textarea, #rqa-report-request input');
        if (attempt >= 3 && request && !asked && !paras.some(p => p.dataset.source === source)) {
          asked = true;
          request.value = `${source}
${Date.now()}`;  // a new value each time, so it always fires
          request.dispatchEvent(new Event('input', {bubbles: true}));
        }
        if (attempt < 80) setTimeout(() => look(attempt + 1), 100);
        return;
      }
      unmark();
      found(para);
    };
    look(0);
  };
  window.rqaShowSource = (source, start, end) => openAt(source, start, (para) => {
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
  });
  // A refusal's suggested section: the report opened at the paragraph where that section starts.
  window.rqaShowSection = (source, start) => openAt(source, start, (para) => {
    para.id = 'rqa-hl';
    para.tabIndex = -1;
    para.classList.add('rqa-section-start');
    para.scrollIntoView({block: 'start'});
    para.focus({preventScroll: true});
  });
  // A refusal's suggested question: asked as if typed and sent.
  window.rqaAsk = (question) => {
    const box = document.querySelector('#rqa-question textarea, #rqa-question input');
    const send = document.querySelector('#rqa-send');
    if (!box || !send) return;
    box.value = question;
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => send.click(), 50);
  };
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a.rqa-open, a.rqa-goto, a.rqa-ask');
    if (!link) return;
    const href = link.getAttribute('href') || '';
    let m;
    if ((m = /^#rqa-src-(\d+)-(\d+)-(.*)$/.exec(href))) {
      window.rqaShowSource(decodeURIComponent(m[3]), +m[1], +m[2]);
    } else if ((m = /^#rqa-sec-(\d+)-(.*)$/.exec(href))) {
      window.rqaShowSection(decodeURIComponent(m[2]), +m[1]);
    } else if ((m = /^#rqa-ask-(.*)$/.exec(href))) {
      window.rqaAsk(decodeURIComponent(m[1]));
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }, true);
}
