// Helpers shared by the pages: navigation, JSON requests with readable errors, model lists, pixel drawing.

/** Mark the current page's link in the header. */
export function markNav() {
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === location.pathname) link.classList.add("active");
  }
}

/** fetch() that returns parsed JSON or throws an Error carrying the server's {"error": ...} message. */
export async function fetchJSON(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error(`cannot reach the server (${err.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const error = new Error(body && body.error ? body.error : `HTTP ${response.status}`);
    error.status = response.status;
    error.body = body;
    throw error;
  }
  return body;
}

/** Fill a <select> with the models of one kind ("mnist", "speech"), saved ones first, then the built-in speech
 * model; keep ?model= or the current choice. */
export async function fillModelSelect(select, kind) {
  const wanted = new URLSearchParams(location.search).get("model") || select.value;
  const { models } = await fetchJSON("/api/models");
  const usable = models.filter((m) => m.kind === kind);
  select.replaceChildren(
    ...usable.map((m) => {
      const option = document.createElement("option");
      option.value = m.name;
      const acc = m.test_accuracy == null ? "" : ` (test acc ${(m.test_accuracy * 100).toFixed(1)}%)`;
      option.textContent = m.name + (m.builtin ? " (shipped with sightsound)" : "") + acc;
      return option;
    }),
  );
  if (usable.some((m) => m.name === wanted)) select.value = wanted;
  return usable;
}

/** Draw grayscale bytes (base64, row-major, 0 = black) into a canvas of the same size. */
export function drawGray(canvas, base64Pixels, width, height) {
  const bytes = Uint8Array.from(atob(base64Pixels), (c) => c.charCodeAt(0));
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = bytes[i];
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/** Show a message in an element; kind "error" colours it. */
export function say(element, message, kind = "") {
  element.textContent = message;
  element.className = kind;
}

/** The Chart.js constructor loaded by the page's <script src="/vendor/chart.umd.min.js">. */
export function chartLibrary() {
  if (!window.Chart) throw new Error("Chart.js did not load from /vendor/chart.umd.min.js");
  return window.Chart;
}
