// Long imports: say that the work is under way, and keep the form from being sent twice.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const message = form.dataset ? form.dataset.busy : null;
  if (!message) return;
  if (form.getAttribute("aria-busy") === "true") {
    event.preventDefault();
    return;
  }
  form.setAttribute("aria-busy", "true");
  const status = form.querySelector(".busy-message");
  if (status) status.textContent = message;
});
