// Wegweiser: the little script the pages use besides htmx (no inline scripts: the CSP forbids them).
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-print]");
  if (target) { event.preventDefault(); window.print(); }
});

// The consent text follows the language the person reads it in (the German text stays).
document.addEventListener("change", (event) => {
  if (event.target.id !== "text_language") return;
  for (const block of document.querySelectorAll("[data-consent-language]")) {
    block.hidden = block.dataset.consentLanguage !== event.target.value;
  }
});
