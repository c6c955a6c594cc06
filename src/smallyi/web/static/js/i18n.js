// English and Simplified Chinese. Keys are the English text; a missing translation shows English.
import { ZH } from "./i18n-zh.js";

export const LANGUAGES = [["en", "English"], ["zh-CN", "简体中文"]];
const KEY = "smallyi.lang";
let current = localStorage.getItem(KEY) || ((navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en");

export function lang() { return current; }

export function setLang(value) {
  current = LANGUAGES.some(([code]) => code === value) ? value : "en";
  localStorage.setItem(KEY, current);
  document.documentElement.lang = current;
}

/** t("{n} hosts match", {n: 3}) */
export function t(text, vars) {
  let out = (current === "zh-CN" && ZH[text]) || text;
  if (vars) for (const [k, v] of Object.entries(vars)) out = out.split(`{${k}}`).join(String(v));
  return out;
}

/** A status name in the current language (the raw value stays in data attributes and the API). */
export function st(status) {
  return t(`status:${status}`) === `status:${status}` ? status : t(`status:${status}`);
}

setLang(current);
