// Wegweiser: the little script the pages use besides htmx (no inline scripts: the CSP forbids them).
document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-print]");
  if (target) { event.preventDefault(); window.print(); }
});
