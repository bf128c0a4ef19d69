// SpendTrackr web app: the few things plain forms cannot do. Everything works without it.
"use strict";

function csrf(form) {
  const field = form && form.querySelector('input[name="csrf"]');
  return field ? field.value : "";
}

// --- New spend: a receipt dropped or chosen is uploaded at once and read while the form is filled.
function setUpDropzone(zone) {
  const input = zone.querySelector('input[type="file"]');
  const out = zone.querySelector("#ocr");
  const form = zone.closest("form");
  async function upload(file) {
    const data = new FormData();
    data.append("file", file);
    data.append("csrf", csrf(form));
    out.textContent = "Uploading " + file.name + "…";
    showPreview(file);
    const response = await fetch(zone.dataset.upload, {
      method: "POST", body: data, credentials: "same-origin",
    });
    out.innerHTML = await response.text();
    if (response.ok) input.value = ""; // sent already: the form carries its id instead
    poll(out);
  }
  // While OCR runs, the fragment names where to ask again; each answer replaces it.
  async function poll(into) {
    const waiting = into.querySelector("[data-poll]");
    if (!waiting) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const response = await fetch(waiting.dataset.poll, {credentials: "same-origin"});
    if (!response.ok) { into.textContent = "Could not check the receipt; it stays attached."; return; }
    into.innerHTML = await response.text();
    poll(into);
  }
  // The picture itself beside what OCR reads, from the browser's own copy of the file.
  function showPreview(file) {
    const old = zone.querySelector("img.preview");
    if (old) { URL.revokeObjectURL(old.src); old.remove(); }
    if (!file.type.startsWith("image/")) return;
    const img = document.createElement("img");
    img.className = "preview";
    img.alt = "Preview of " + file.name;
    img.src = URL.createObjectURL(file);
    zone.appendChild(img);
  }
  input.addEventListener("change", () => { if (input.files[0]) upload(input.files[0]); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
}

// "Use these values": the OCR result fills the form only when the person asks for it.
document.addEventListener("click", (e) => {
  const button = e.target.closest("button.fill");
  if (!button) return;
  const form = button.closest("form");
  for (const name of ["amount", "currency", "spend_date", "description"]) {
    const value = button.dataset[name];
    const field = form.elements[name];
    if (value && field) field.value = value;
  }
  form.elements.amount.focus();
});

// --- Approvals inbox: j/k move, x selects, a approves, r rejects (with the comment), ? help.
function setUpInbox(inbox) {
  const rows = () => Array.from(inbox.querySelectorAll("tr[data-approval]"));
  function focusRow(index) {
    const all = rows();
    if (!all.length) return;
    const row = all[Math.max(0, Math.min(index, all.length - 1))];
    row.focus();
  }
  document.addEventListener("keydown", (e) => {
    if (e.target.matches("input, textarea, select") || e.ctrlKey || e.metaKey || e.altKey) return;
    const all = rows();
    const current = all.indexOf(document.activeElement.closest("tr[data-approval]"));
    const row = all[current];
    if (e.key === "j") { focusRow(current + 1); e.preventDefault(); }
    else if (e.key === "k") { focusRow(current - 1); e.preventDefault(); }
    else if (e.key === "x" && row) { const box = row.querySelector('input[type="checkbox"]'); box.checked = !box.checked; e.preventDefault(); }
    else if (e.key === "a" && row) { row.querySelector('button[value="approve"]').click(); e.preventDefault(); }
    else if (e.key === "r" && row) { row.querySelector('input[name="comment"]').focus(); e.preventDefault(); }
    else if (e.key === "?") { const help = document.getElementById("shortcuts"); if (help) help.hidden = !help.hidden; }
  });
  // The row's reject needs its comment: Enter in the comment field rejects.
  inbox.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.matches('input[name="comment"]')) {
      e.preventDefault();
      e.target.closest("tr").querySelector('button[value="reject"]').click();
    }
  });
  if (rows().length) focusRow(0);
}

// The select-all box of the inbox.
document.addEventListener("change", (e) => {
  if (!e.target.matches("#select-all")) return;
  for (const box of document.querySelectorAll('input[name="approval_id"]')) box.checked = e.target.checked;
});

document.addEventListener("DOMContentLoaded", () => {
  const zone = document.getElementById("dropzone");
  if (zone) setUpDropzone(zone);
  const inbox = document.getElementById("inbox");
  if (inbox) setUpInbox(inbox);
});
