// The login screen.

import { login, ApiError } from "./api.js";
import { t } from "./i18n.js";
import { h } from "./dom.js";

export function mountLogin(el, { message, onSuccess }) {
  const user = h("input", { testid: "login-user", id: "login-user", name: "username", autocomplete: "username",
    required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { testid: "login-password", id: "login-password", name: "password", type: "password",
    autocomplete: "current-password", required: true });
  const error = h("p", { testid: "login-error", class: "form-error", role: "alert", hidden: !message }, message || "");
  const submit = h("button", { testid: "login-submit", type: "submit", class: "btn primary big" }, t("login"));
  const form = h("form", { class: "login-form", novalidate: true },
    h("h1", {}, t("title")),
    h("label", { for: "login-user" }, t("user")), user,
    h("label", { for: "login-password" }, t("password")), password,
    error, submit);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!user.value.trim() || !password.value) {
      showError(t("login_failed"));
      return;
    }
    submit.disabled = true;
    try {
      const session = await login(user.value.trim(), password.value);
      onSuccess(session);
    } catch (failure) {
      const status = failure instanceof ApiError ? failure.status : 0;
      showError(status === 401 ? t("login_failed") : status === 429 ? t("login_locked")
        : t("login_error", { detail: failure.detail || String(failure) }));
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });

  function showError(text) {
    error.textContent = text;
    error.hidden = false;
  }

  el.replaceChildren(h("div", { class: "login" }, form));
  user.focus();
}
