// Progressive enhancement only: every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // "Select all" checkboxes tick every row checkbox of the same name.
  for (const box of document.querySelectorAll("input[data-select-all]")) {
    box.addEventListener("change", () => {
      for (const row of document.querySelectorAll(`input[name="${box.dataset.selectAll}"]`)) {
        row.checked = box.checked;
      }
    });
  }
  // Slow parts of a page (a worker ping) are fetched after it has shown.
  for (const slot of document.querySelectorAll("[data-fragment]")) {
    fetch(slot.dataset.fragment, { credentials: "same-origin" })
      .then((answer) => (answer.ok ? answer.text() : Promise.reject(answer.status)))
      .then((html) => { slot.outerHTML = html; })
      .catch(() => { slot.textContent = "could not ask"; });
  }
  // A page still in progress (a replay run, a job on its way) reloads itself.
  const refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    setTimeout(() => window.location.reload(), Number(refresh.dataset.refresh) * 1000);
  }
});
