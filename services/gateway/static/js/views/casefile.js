// The case file (案卷) of a handoff: the checklist of the kinds its transfer needs, the
// documents filed (open inline: images, PDFs, video; download), an upload with progress
// bar (drag and drop), and "生成并归档" for each official form. Every call goes to the API
// with the user's token (GET/POST /api/v1/<collection>/<id>/documents, .../forms/<f>.pdf).
import { API, session, call, ApiError } from "../api.js";
import { h, clear, formatTime } from "../dom.js";
import { t, lang } from "../i18n.js";
import { panel, errorNote } from "./common.js";

const title = (d) => (lang() === "en" ? d.title_en || d.title : d.title);

function size(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}

async function fetchBlob(path) {
  const response = await fetch(API + path, { headers: { Authorization: `Bearer ${session()?.token}` } });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, body);
  }
  return response.blob();
}

function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API + path);
    xhr.setRequestHeader("Authorization", `Bearer ${session()?.token}`);
    xhr.setRequestHeader("Idempotency-Key", crypto.randomUUID());
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new ApiError(0, { code: "network", message: t("casefile.network") }));
    xhr.send(form);
  });
}

export function caseFilePanel({ collection, id, rec, table, ctx }) {
  const rules = table?.case_file;
  if (!rules || !rec) return null;
  const base = `/${collection}/${id}`;
  const files = rec.files || [];
  const role = session()?.role;
  const present = new Set(files.map((f) => f.kind));
  const kinds = Object.fromEntries(rules.kinds.map((k) => [k.id, k]));
  const status = h("div", { class: "casefile-status", role: "status", id: "casefile-status" });
  const preview = h("div", { class: "casefile-preview", id: "casefile-preview" });
  const refresh = () => ctx?.rerender?.();

  const checklist = rules.required_for_transfer?.length ? h("ul", { class: "checklist", id: "casefile-checklist" },
    rules.required_for_transfer.map((k) => h("li", { class: present.has(k) ? "done" : "todo", dataset: { kind: k } },
      h("span", { class: "tick", "aria-hidden": "true" }, present.has(k) ? "✓" : "○"),
      h("span", {}, kinds[k] ? title(kinds[k]) : k),
      h("span", { class: ["status", present.has(k) ? "ok" : "missing"] },
        present.has(k) ? t("casefile.uploaded") : t("handoff.missing"))))) : null;

  async function open(doc) {
    clear(preview);
    try {
      const blob = await fetchBlob(`${base}/documents/${doc.id}`);
      const href = URL.createObjectURL(blob);
      if (doc.media_type.startsWith("image/")) preview.append(h("img", { src: href, alt: doc.title }));
      else if (doc.media_type.startsWith("video/")) preview.append(h("video", { src: href, controls: true }));
      else if (doc.media_type === "application/pdf") preview.append(h("iframe", { src: href, title: doc.title }));
      preview.append(h("a", { href, download: doc.filename, class: "button" }, `${t("casefile.download")} ${doc.filename}`));
    } catch (err) {
      preview.append(errorNote(err));
    }
  }

  const list = h("ul", { class: "plain casefile-list", id: "casefile-list" }, files.length ? files.map((f) =>
    h("li", { dataset: { documentId: f.id, kind: f.kind } },
      h("button", { type: "button", class: "link", onclick: () => open(f) }, f.title || f.filename),
      h("span", { class: "muted small" },
        ` · ${kinds[f.kind] ? title(kinds[f.kind]) : f.kind} · ${size(f.size)} · ${f.uploaded_by?.unit || ""} · ${formatTime(f.uploaded_at)}`),
      h("div", { class: "muted small mono" }, `SHA-256 ${f.sha256.slice(0, 16)}…`)))
    : h("li", { class: "muted" }, t("casefile.empty")));

  const mine = rules.kinds.filter((k) => k.roles.includes(role) && (!k.states || k.states.includes(rec.state)));
  let uploader = null;
  if (mine.length) {
    const kind = h("select", { name: "kind", id: "casefile-kind" }, mine.map((k) => h("option", { value: k.id }, title(k))));
    const name = h("input", { name: "title", id: "casefile-title", placeholder: t("casefile.title") });
    const file = h("input", { type: "file", name: "file", id: "casefile-file",
      accept: ".pdf,.jpg,.jpeg,.png,.mp4,.doc,.docx,.xls,.xlsx,.pptx" });
    const bar = h("progress", { max: "1", value: "0", id: "casefile-progress", hidden: true });
    const send = async (chosen) => {
      if (!chosen) return;
      if (chosen.size > rules.max_bytes) {
        clear(status).append(errorNote(new ApiError(413, { message: t("casefile.too_big"), code: "too_large" })));
        return;
      }
      const form = new FormData();
      form.append("kind", kind.value);
      form.append("title", name.value || chosen.name);
      form.append("file", chosen, chosen.name);
      bar.hidden = false;
      clear(status).append(t("casefile.uploading"));
      try {
        await upload(`${base}/documents`, form, (p) => { bar.value = p; });
        clear(status).append(t("casefile.done"));
        refresh();
      } catch (err) {
        bar.hidden = true;
        clear(status).append(errorNote(err));
      }
    };
    const zone = h("div", { class: "dropzone", id: "casefile-drop",
      ondragover: (e) => { e.preventDefault(); zone.classList.add("over"); },
      ondragleave: () => zone.classList.remove("over"),
      ondrop: (e) => { e.preventDefault(); zone.classList.remove("over"); send(e.dataTransfer.files[0]); } },
      t("casefile.drop"));
    uploader = h("form", { class: "casefile-upload", id: "casefile-upload",
      onsubmit: (e) => { e.preventDefault(); send(file.files[0]); } },
      kind, name, file, zone,
      h("button", { type: "submit", class: "primary" }, t("casefile.upload")), bar);
  }

  const forms = (rules.forms || []).length ? h("ul", { class: "plain casefile-forms", id: "casefile-forms" },
    rules.forms.map((f) => h("li", { dataset: { form: f.id } }, h("span", {}, f.title),
      h("button", { type: "button", class: "link", onclick: async () => {
        clear(preview);
        try {
          const href = URL.createObjectURL(await fetchBlob(`${base}/forms/${f.id}.pdf`));
          preview.append(h("iframe", { src: href, title: f.title }),
            h("a", { href, download: `${rec.case_number}-${f.title}.pdf`, class: "button" }, t("casefile.download")));
        } catch (err) { preview.append(errorNote(err)); }
      } }, t("casefile.view")),
      kinds[f.kind]?.roles.includes(role) ? h("button", { type: "button", class: "link file-form", onclick: async () => {
        clear(status).append(t("casefile.uploading"));
        try {
          await call(`${base}/forms/${f.id}.pdf`, { method: "POST" });
          clear(status).append(t("casefile.done"));
          refresh();
        } catch (err) { clear(status).append(errorNote(err)); }
      } }, t("casefile.file_form")) : null))) : null;

  return panel(t("casefile.title_panel"), h("div", { class: "casefile", id: "casefile" },
    checklist, list, uploader, status, preview,
    forms ? h("h3", {}, t("casefile.forms")) : null, forms));
}
