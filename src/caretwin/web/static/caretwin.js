// caretwin dashboard: the only script. It follows a background job's progress; every page works without
// it (the job page then reloads itself).
"use strict";

function followJob(box) {
  const bar = document.getElementById("job-progress");
  const status = document.getElementById("job-status");
  const poll = async () => {
    let job;
    try {
      const res = await fetch(`/jobs/${box.dataset.job}/progress`, {credentials: "same-origin"});
      if (!res.ok) { status.textContent = "The server stopped answering; reload the page to see where the job is."; return; }
      job = await res.json();
    } catch (e) {
      status.textContent = "The server cannot be reached; reload the page to try again.";
      return;
    }
    bar.max = Math.max(job.total, 1);
    bar.value = job.done;
    bar.textContent = `${job.done} of ${job.total}`;
    if (job.status === "queued" || job.status === "running") {
      status.textContent = `${job.status === "queued" ? "Waiting to start" : "Running"}: ${job.done} of ${job.total || "…"} replications.`;
      setTimeout(poll, 500);
    } else if (job.status === "done") {
      status.textContent = "Done. Opening the comparison…";
      if (job.next) window.location.assign(job.next);
    } else if (job.status === "failed") {
      status.textContent = `It failed: ${job.error}`;
    } else {
      status.textContent = "Cancelled.";
    }
  };
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("job");
  if (box && (box.dataset.status === "queued" || box.dataset.status === "running")) followJob(box);
});
