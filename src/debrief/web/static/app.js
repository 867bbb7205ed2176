// debrief's only script: drag and drop, upload progress, polling until a result is ready, and
// playing the recording from a clicked sentence.
// The pages work without it (plain forms and a reload link).
"use strict";

(function () {
  function say(upload) {
    // The same words as pages.describe(), so the page reads the same before and after a poll.
    switch (upload.status) {
      case "queued": return upload.position ? `Queued: ${upload.position} ahead of it.` : "Queued: next up.";
      case "running": return `Working on it: ${upload.stage || "starting"}.`;
      case "pending": return "Waiting for another debrief process to analyze it.";
      case "lost": return `Lost touch with the desk (${upload.error}); reload the page to try again.`;
      case "done":
        if (upload.result && upload.result.status === "not_enough") return "Done: not enough to coach.";
        return upload.result && upload.result.fix ? `Done: fix ${upload.result.fix.topic || upload.result.fix.step}.` : "Done: nothing to fix.";
      default: return "Could not be analyzed: " + (upload.error || "unknown error");
    }
  }

  async function poll(api, onUpdate) {
    // Bounded: a page left open for hours stops asking after about an hour.
    for (let i = 0; i < 2400; i++) {
      let response;
      try {
        response = await fetch(api, { headers: { Accept: "application/json" } });
      } catch (err) {
        onUpdate({ status: "lost", error: "no connection" });
        return;
      }
      if (!response.ok) { onUpdate({ status: "lost", error: `HTTP ${response.status}` }); return; }
      const upload = await response.json();
      onUpdate(upload);
      if (upload.status === "done" || upload.status === "error") return;
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }

  function send(body, onProgress) {
    // XMLHttpRequest, not fetch: only it reports upload progress, which a 100 MB file needs.
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/uploads");
      xhr.responseType = "json";
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(Math.round((100 * e.loaded) / e.total)); };
      xhr.onload = () => (xhr.status === 202 ? resolve(xhr.response)
        : reject(new Error((xhr.response && xhr.response.detail) || `HTTP ${xhr.status}`)));
      xhr.onerror = () => reject(new Error("the connection failed"));
      xhr.send(body);
    });
  }

  function setupUpload(form) {
    const input = form.querySelector("input[type=file]");
    const zone = document.getElementById("dropzone");
    const hint = document.getElementById("files-hint");
    const list = document.getElementById("upload-list");
    const showChosen = () => {
      hint.textContent = input.files.length ? Array.from(input.files, (f) => f.name).join(", ") : "Choose files, or drop them here.";
    };
    input.addEventListener("change", showChosen);
    ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); }));
    ["dragleave", "drop"].forEach((type) => zone.addEventListener(type, () => zone.classList.remove("over")));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; showChosen(); }
    });

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const files = Array.from(input.files);
      const fields = new FormData(form);
      fields.delete("files");
      list.replaceChildren();
      const accepted = [];
      // One request per file: each gets its own progress, size limit and answer.
      for (const file of files) {
        const item = document.createElement("li");
        item.textContent = `${file.name}: uploading`;
        list.append(item);
        const body = new FormData();
        for (const [name, value] of fields) body.append(name, value);
        body.append("files", file, file.name);
        try {
          const answer = await send(body, (percent) => { item.textContent = `${file.name}: uploading, ${percent} %`; });
          const upload = answer.uploads[0];
          accepted.push(upload);
          const link = document.createElement("a");
          link.href = upload.url;
          link.textContent = file.name;
          const text = document.createElement("span");
          item.replaceChildren(link, ": ", text);
          text.textContent = upload.duplicate && !upload.queued ? "already analyzed." : "queued.";
          if (files.length > 1) poll(upload.api, (u) => { text.textContent = say(u); });
        } catch (err) {
          item.textContent = `${file.name}: ${err.message}`;
          item.classList.add("error");
        }
      }
      if (files.length === 1 && accepted.length === 1) window.location.assign(accepted[0].url);
    });
  }

  function setupProgress(section) {
    const text = document.getElementById("status-text");
    poll(section.dataset.poll, (upload) => {
      text.textContent = say(upload);
      if (upload.status === "done" || upload.status === "error") window.location.reload();
    });
  }

  function setupPlayback(audio) {
    // A sentence of the transcript, or a quote in the walk, plays the recording from when it is said.
    document.addEventListener("click", (e) => {
      const said = e.target.closest("[data-t]");
      if (!said) return;
      e.preventDefault();
      audio.currentTime = Number(said.dataset.t);
      audio.play().catch(() => {});
    });
  }

  const form = document.getElementById("upload");
  if (form) setupUpload(form);
  const progress = document.querySelector("[data-poll]");
  if (progress) setupProgress(progress);
  const audio = document.getElementById("recording");
  if (audio) setupPlayback(audio);
})();
