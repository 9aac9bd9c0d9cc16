/* The sealq console: polls the local stack's read-only JSON and draws it.
 *
 * Every value from the server is written with textContent (queue names are the
 * tenants'), never as HTML. Routes: "#" the overview, "#queue/<account>/<name>" one
 * queue's settings and what is stored for it.
 */
(function () {
  "use strict";
  var LIVE_EVERY = 1000, QUEUES_EVERY = 2500, STORED_EVERY = 3000;
  var lastOk = 0;
  var timers = [];

  function $(id) { return document.getElementById(id); }

  function node(name, attrs, children) {
    var el = document.createElement(name);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { el.textContent = attrs[key]; } else { el.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { el.appendChild(child); } });
    return el;
  }

  function cell(label, value, field, extra) {
    var attrs = {"data-label": label};
    if (field) { attrs["data-field"] = field; }
    if (extra) { attrs["class"] = extra; }
    var td = node("td", attrs);
    if (value instanceof Node) { td.appendChild(value); } else { td.textContent = value; }
    return td;
  }

  function number(value, digits) {
    if (value === null || value === undefined) { return "?"; }
    return Number(value).toLocaleString("en-US", {maximumFractionDigits: digits || 0});
  }

  function percent(ratio) {
    return ratio === null || ratio === undefined ? "–" : (100 * ratio).toFixed(1) + "%";
  }

  function queueHref(account, name) {
    return "#queue/" + encodeURIComponent(account) + "/" + encodeURIComponent(name);
  }

  function queueLink(target) {
    return node("a", {href: queueHref(target.account, target.name), text: target.name,
                      "class": "queue-link"});
  }

  function get(path) {
    return fetch(path, {credentials: "same-origin", cache: "no-store"}).then(function (response) {
      if (response.status === 401 || response.status === 403) {
        throw new Error("refused: open the console with the URL the dev server printed");
      }
      if (!response.ok) {
        return response.json().then(function (body) { throw new Error(body.error); });
      }
      return response.json();
    });
  }

  function status(ok, message) {
    var el = $("status");
    if (ok) {
      lastOk = Date.now();
      el.dataset.state = "live";
      el.textContent = "live";
    } else {
      el.dataset.state = "error";
      el.textContent = message;
    }
  }

  // -- the overview ---------------------------------------------------------------

  function drawLive(data) {
    $("rps").textContent = number(data.requestsPerSecond, 1);
    $("eps").textContent = number(data.errorsPerSecond, 1);
    $("requests-total").textContent = number(data.requests);
    $("errors-total").textContent = number(data.errors);
    $("window").textContent = number(data.rateWindow, 1);
    data.caches.forEach(function (tier) {
      $("ratio-" + tier.tier).textContent = percent(tier.ratio);
      $("lookups-" + tier.tier).textContent = number(tier.hits) + " hits, " +
        number(tier.misses) + " misses";
    });
    var kms = data.kms;
    $("kms-saved").textContent = number(kms.saved) +
      (kms.savedShare === null ? "" : " (" + percent(kms.savedShare) + ")");
    $("kms-made").textContent = number(kms.made);
    $("kms-per-message").textContent = number(kms.perMessage);
    $("kms-secrets").textContent = number(kms.secrets);
    $("kms-throttled").textContent = number(kms.throttled);

    var chart = $("kms-chart");
    var perMessage = data.history.map(function (p) { return [p[0], p[1]]; });
    var made = data.history.map(function (p) { return [p[0], p[2]]; });
    window.SealqChart.lines(chart, [{name: "per-message", points: perMessage},
                                    {name: "made", points: made}], {fillBetween: [0, 1]});
    chart.dataset.perMessage = String(kms.perMessage);
    chart.dataset.made = String(kms.made);
    chart.dataset.points = String(data.history.length);

    var body = $("actions").tBodies[0];
    body.replaceChildren();
    if (!data.actions.length) {
      body.appendChild(node("tr", {"class": "empty"}, [node("td", {colspan: "5",
        text: "No requests yet."})]));
    }
    data.actions.forEach(function (row) {
      body.appendChild(node("tr", {"data-action": row.action}, [
        cell("Action", row.action, "action"),
        cell("req/s", number(row.requestsPerSecond, 1), "rps", "n"),
        cell("err/s", number(row.errorsPerSecond, 1), "eps", "n"),
        cell("requests", number(row.requests), "requests", "n"),
        cell("errors", number(row.errors), "errors", "n")]));
    });
  }

  function trigger(t) {
    if (!t) { return "–"; }
    var text = t.function + (t.enabled ? "" : " (disabled)") + ", batch " + t.batchSize;
    if (t.filters) { text += ", " + t.filters + " filter" + (t.filters > 1 ? "s" : ""); }
    return text;
  }

  function cmk(q) {
    var text = q.cmkIsDefault ? "default" : (q.cmk.indexOf("arn:") === 0 ? keyId(q.cmk) : q.cmk);
    var span = node("span", {title: q.cmk, text: text});
    if (q.cmkIsDefault) { span.appendChild(node("small", {text: " " + q.cmk})); }
    return span;
  }

  function drawQueues(data) {
    $("where").textContent = data.stack.url + " · AWS: " + data.stack.aws + " · " + data.region;
    var holder = $("accounts");
    holder.replaceChildren();
    data.accounts.forEach(function (account) {
      var head = node("h3", {text: account.name + " "}, [node("small", {text: account.account})]);
      var section = node("div", {"class": "account", "data-account": account.account}, [head]);
      if (!account.queues.length) {
        section.appendChild(node("p", {"class": "fine", text: "No queues."}));
        holder.appendChild(section);
        return;
      }
      var rows = account.queues.map(function (q) {
        var dlq = q.deadLetterQueue ? queueLink(q.deadLetterQueue) : "–";
        var sources = q.sources.length ? node("span", {}, q.sources.map(function (s, n) {
          var span = node("span", {}, [queueLink(s)]);
          if (n) { span.prepend(document.createTextNode(", ")); }
          return span;
        })) : "–";
        return node("tr", {"data-queue": q.account + "/" + q.name}, [
          cell("Queue", node("a", {href: queueHref(q.account, q.name), text: q.name,
                                   "class": "queue-name"}), "name"),
          cell("Type", q.type, "type"),
          cell("CMK", cmk(q), "cmk", "cmk"),
          cell("Key reuse", q.reusePeriod + " s", "reuse", "n"),
          cell("Visible", number(q.visible), "visible", "n"),
          cell("In flight", number(q.inFlight), "inFlight", "n"),
          cell("Delayed", number(q.delayed), "delayed", "n"),
          cell("Dead-letter queue", dlq, "dlq"),
          cell("Sources", sources, "sources"),
          cell("Quarantined", number(q.quarantined), "quarantined", "n"),
          cell("Move tasks", number(q.moveTasksRunning), "moves", "n"),
          cell("Trigger", trigger(q.trigger), "trigger")]);
      });
      var head2 = node("tr", {}, ["Queue", "Type", "CMK", "Key reuse", "Visible", "In flight",
        "Delayed", "Dead-letter queue", "Sources", "Quarantined", "Move tasks", "Trigger"]
        .map(function (h) { return node("th", {text: h}); }));
      var table = node("table", {"class": "stack queues"}, [node("thead", {}, [head2]),
        node("tbody", {}, rows)]);
      section.appendChild(node("div", {"class": "scroll"}, [table]));
      holder.appendChild(section);
    });
  }

  // -- one queue: what is stored ------------------------------------------------------

  function short(text, keep) {
    return text.length > keep ? text.slice(0, keep) + "…" : text;
  }

  function keyId(arn) {
    return arn ? "key/" + short(arn.split("/").pop(), 8) : "–";
  }

  function sealedFor(context) {
    if (!context) { return "–"; }
    var arn = context["sealq:queue-arn"] || "";
    var id = context["sealq:queue-id"];
    return arn.split(":").pop() + (id ? " #" + id.slice(0, 8) : "");
  }

  var selected = null;

  function drawRecord(r) {
    var panel = $("record-panel");
    panel.hidden = !r;
    if (!r) { return; }
    var env = r.envelope || {};
    $("record-id").textContent = r.messageId;
    var list = $("record");
    list.replaceChildren();
    var where = r.location && r.location.form === "S3" ?
      "S3 object " + r.location.bucket + "/" + r.location.key + " (the SQS body is a pointer)" :
      "inline: base64 of the envelope, in the SQS message body";
    var rows = [
      ["State", r.state + ", received " + r.receives + " times"],
      ["Stored", where + "; " + number(r.storedBytes) + " bytes in SQS"],
      ["Stored body begins", r.storedExcerpt + "…"]];
    if (r.problem) { rows.push(["Problem", r.problem]); }
    if (r.envelope) {
      rows = rows.concat([
        ["Format", "AWS Encryption SDK message, version " + env.formatVersion],
        ["Algorithm suite", env.suite + " (" + env.suiteId + "): committing, no signature"],
        ["Envelope", number(env.envelopeBytes) + " bytes: header " + number(env.headerBytes) +
          ", " + env.frames + " frame" + (env.frames === 1 ? "" : "s") + " of at most " +
          number(env.frameLength) + " bytes"],
        ["Ciphertext", number(env.ciphertextBytes) + " bytes (body, attributes and sender, sealed)"]]);
      env.dataKeys.forEach(function (k) {
        rows.push(["Encrypted data key", k.provider + ", " + number(k.encryptedKeyBytes) +
          " bytes under " + k.cmkArn]);
      });
      Object.keys(env.encryptionContext).forEach(function (key) {
        rows.push(["Context " + key, env.encryptionContext[key]]);
      });
    }
    rows.forEach(function (pair) {
      list.appendChild(node("dt", {text: pair[0]}));
      list.appendChild(node("dd", {text: pair[1], "class": "mono"}));
    });
  }

  function drawStored(data) {
    var q = data.queue;
    $("queue-title").textContent = q.name;
    var facts = $("queue-facts");
    facts.replaceChildren();
    [["Account", q.account], ["ARN", q.arn], ["Type", q.type], ["CMK", q.cmk],
     ["Key reuse period", q.reusePeriod + " s"]].forEach(function (pair) {
      facts.appendChild(node("dt", {text: pair[0]}));
      facts.appendChild(node("dd", {text: pair[1]}));
    });
    if (data.counts) {
      facts.appendChild(node("dt", {text: "Messages"}));
      facts.appendChild(node("dd", {text: number(data.counts.visible) + " visible, " +
        number(data.counts.inFlight) + " in flight, " + number(data.counts.delayed) +
        " delayed"}));
    }
    $("stored-note").textContent = data.available ?
      (data.listed + " record" + (data.listed === 1 ? "" : "s") + " listed" +
       (data.records.length < data.listed ? " (the first " + data.records.length + " shown)" : "") +
       ". " + data.note + " Select a record to see all its clear fields.") : data.note;
    var body = $("stored").tBodies[0];
    body.replaceChildren();
    var records = data.records || [];
    var current = records.filter(function (r) { return r.messageId === selected; })[0];
    records.forEach(function (r) {
      var env = r.envelope || {};
      var where = r.location ? (r.location.form === "S3" ? "S3" : "inline") : "?";
      var row = node("tr", {"data-message": r.messageId, tabindex: "0"}, [
        cell("Message", short(r.messageId, 8), "id", "mono"),
        cell("State", r.state, "state"),
        cell("Where", where, "where"),
        cell("stored", number(r.storedBytes) + " B", "stored", "n"),
        cell("envelope", env.envelopeBytes ? number(env.envelopeBytes) + " B" : "–",
             "envelope", "n"),
        cell("ciphertext", env.ciphertextBytes !== undefined ?
          number(env.ciphertextBytes) + " B" : "–", "ciphertext", "n"),
        cell("Suite", env.suiteId || r.problem || "–", "suite", "mono"),
        cell("CMK", keyId(env.cmkArn), "cmkArn", "mono"),
        cell("Sealed for", sealedFor(env.encryptionContext), "sealedFor", "mono"),
        cell("Stored body begins", short(r.storedExcerpt, 20), "excerpt", "mono excerpt")]);
      row.title = env.cmkArn || "";
      if (r.messageId === selected) { row.className = "selected"; }
      row.addEventListener("click", function () { selected = r.messageId; drawStored(data); });
      body.appendChild(row);
    });
    drawRecord(current || records[0] || null);
  }

  // -- routing and polling -----------------------------------------------------------

  function every(fn, ms) {
    fn();
    timers.push(setInterval(fn, ms));
  }

  function poll(path, draw) {
    return function () {
      get(path).then(function (data) { draw(data); status(true); })
        .catch(function (err) { status(false, err.message); });
    };
  }

  function route() {
    timers.forEach(clearInterval);
    timers = [];
    var match = /^#queue\/([^/]+)\/([^/]+)$/.exec(location.hash);
    $("overview").hidden = !!match;
    $("queue").hidden = !match;
    if (match) {
      var path = "/console/api/stored/" + match[1] + "/" + match[2];
      every(poll(path, drawStored), STORED_EVERY);
    } else {
      every(poll("/console/api/live", drawLive), LIVE_EVERY);
      every(poll("/console/api/queues", drawQueues), QUEUES_EVERY);
    }
    window.scrollTo(0, 0);
  }

  setInterval(function () {
    if (lastOk && Date.now() - lastOk > 5000) {
      status(false, "no answer for " + Math.round((Date.now() - lastOk) / 1000) + " s");
    }
  }, 1000);
  window.addEventListener("hashchange", route);
  document.addEventListener("DOMContentLoaded", route);
}());
