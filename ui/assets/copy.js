() => {
  const box = document.querySelector('#rqa-copy-text textarea');
  const text = box ? box.value : '';
  if (text && navigator.clipboard) { navigator.clipboard.writeText(text).catch(() => {}); }
  if (box) { box.focus(); box.select(); }
}
