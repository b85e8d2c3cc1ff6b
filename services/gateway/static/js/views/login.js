// Sign in: POST /api/v1/login; the token is kept for this browser tab only.
import { signIn, session, ApiError } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

export async function loginView(_params, ctx) {
  if (session()) {
    ctx.go("#/todo");
  }
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const otp = h("input", { id: "otp", name: "otp", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: 6 });
  const otpField = h("div", { class: "field", hidden: true, id: "otp-field" }, h("label", { for: "otp" }, t("login.otp")), otp);
  const error = h("div", { class: "form-error", role: "alert", hidden: true, id: "login-error" });
  const button = h("button", { type: "submit", class: "primary", id: "login-submit" }, t("login.submit"));
  const form = h("form", { class: "panel login", novalidate: true },
    h("h1", {}, t("login.title")),
    h("p", { class: "muted" }, t("login.hint")),
    h("div", { class: "field" }, h("label", { for: "username" }, t("login.username")), username),
    h("div", { class: "field" }, h("label", { for: "password" }, t("login.password")), password),
    otpField, error, h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      await signIn(username.value.trim(), password.value, otpField.hidden ? "" : otp.value.trim());
      ctx.go("#/todo");
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : String(err);
      error.hidden = false;
      if (err instanceof ApiError && err.code === "otp_required") {
        otpField.hidden = false;    // the password was right: ask for the code
        otp.value = "";
        otp.focus();
      } else {
        password.select();
      }
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "login-wrap" }, form);
}
