// The JSON API under /api/v1 with the signed-in user's bearer token. The console never
// decides what a user may see: it shows what these calls return, nothing more.

const SESSION = "liandong.session";
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "http_error";
    this.errors = body?.errors || {};
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) || "null");
  } catch {
    return null;
  }
}

export function signOut() {
  sessionStorage.removeItem(SESSION);
}

/** Revoke the token at every service (POST /logout), then forget it here. */
export async function logOut() {
  const s = session();
  if (s?.token) {
    try { await request("/logout", { method: "POST", body: {} }); } catch { /* forget anyway */ }
  }
  signOut();
}

function url(path, query) {
  const u = new URL(API + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "" && v !== false) u.searchParams.set(k, v);
  }
  return u;
}

async function request(path, { method = "GET", body, query } = {}) {
  const headers = { Accept: "application/json" };
  const s = session();
  if (s?.token) headers.Authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, query), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, { code: "network", message: String(err.message || err) });
  }
  if (response.status === 401 && s?.token) {
    signOut();
    window.dispatchEvent(new CustomEvent("liandong:unauthenticated"));
  }
  return response;
}

export async function call(path, options) {
  const response = await request(path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { code: "bad_response", message: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, query) => call(path, { query });
export const post = (path, body, query) => call(path, { method: "POST", body, query });

export async function signIn(username, password, otp) {
  const data = await post("/login", otp ? { username, password, otp } : { username, password });
  sessionStorage.setItem(SESSION, JSON.stringify(data));
  return data;
}

/** Download an export (csv/xlsx) with the token: a plain link cannot send it. */
export async function download(path, query, filename) {
  const response = await request(path, { query });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, body);
  }
  const blob = await response.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

// URL collection of each procedure kind (services/gateway/api.py)
export const COLLECTION = {
  criminal_referral: "criminal-referrals",
  market_referral: "market-referrals",
  joint_action: "joint-actions",
  assistance_request: "assistance-requests",
  alert_task: "alert-tasks",
  supervision_inquiry: "supervision-inquiries",
};

/** Upload a file as the request body (XHR: fetch reports no upload progress);
 *  onProgress(fraction) follows the upload, then the server's answer is returned. */
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url(path, { filename: file.name }));
    const s = session();
    if (s?.token) xhr.setRequestHeader("Authorization", `Bearer ${s.token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("Content-Type", file.name.toLowerCase().endsWith(".xlsx")
      ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" : "text/csv");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.upload.onload = () => onProgress(1);
    xhr.onerror = () => reject(new ApiError(0, { code: "network", message: "network error" }));
    xhr.onload = () => {
      let data = null;
      try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { data = null; }
      if (xhr.status === 401 && s?.token) {
        signOut();
        window.dispatchEvent(new CustomEvent("liandong:unauthenticated"));
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data));
    };
    xhr.send(file);
  });
}

const cache = new Map();
let unitList = null;

/** The reference table of units (GET /units), fetched once; [] if it cannot be read. */
export function units() {
  if (!unitList) {
    unitList = get("/units").then((r) => r.units).catch(() => {
      unitList = null;
      return [];
    });
  }
  return unitList;
}

// the kinds of unit a payload field names (the services check the same, 422 otherwise)
const UNIT_FIELDS = {
  police_unit: ["police"], procuratorate_unit: ["procuratorate"], court_unit: ["court"],
  competent_authority: ["police"],
};
const TARGET_KINDS = {
  send: ["market_regulation"], send_to_transport: ["enforcement", "partner", "port_shipping", "county_centre"],
  open_reverse_transfer: ["enforcement", "partner", "port_shipping"],
};

/** Suggestions (field -> [{value, label}]) for the unit fields of a command's form. */
export function unitHints(known, command) {
  const fields = { ...UNIT_FIELDS, ...(TARGET_KINDS[command] ? { target_unit: TARGET_KINDS[command] } : {}) };
  return Object.fromEntries(Object.entries(fields).map(([field, kinds]) => [field,
    (known || []).filter((u) => kinds.includes(u.kind)).map((u) => ({ value: u.id, label: u.name }))]));
}

/** Procedure table and payload schemas of a kind, fetched once per page load. */
export function procedure(kind) {
  if (!cache.has(kind)) {
    const p = Promise.all([get(`/procedures/${kind}`), get(`/procedures/${kind}/payloads`), units()])
      .then(([proc, payloads, known]) => ({ ...proc, payloads: payloads.commands, units: known }));
    p.catch(() => cache.delete(kind));
    cache.set(kind, p);
  }
  return cache.get(kind);
}
