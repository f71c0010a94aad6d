// The record page's proof checker: recomputes the RFC 6962 / RFC 9162 inclusion path with WebCrypto
// SHA-256 and checks the checkpoint's Ed25519 signature (C2SP signed note), all in this browser.
// Nothing here trusts the server's own verdict: it fetches the proof and does the arithmetic itself.
"use strict";
(function () {
  const section = document.getElementById("proof");
  if (!section || !section.dataset.proofUrl) return;
  const verdict = document.getElementById("proof-verdict");
  const checks = document.getElementById("proof-checks");
  const vkeyInput = document.getElementById("vkey");
  const enc = new TextEncoder();

  function b64(text) {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function same(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }
  function hex(bytes) { return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""); }
  async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
  const leafHash = (data) => sha256(concat(new Uint8Array([0]), data));
  const nodeHash = (l, r) => sha256(concat(new Uint8Array([1]), l, r));

  // RFC 9162 §2.1.3.2, as inferlog.ledger.merkle.verify_inclusion does it.
  async function rootFromPath(index, size, leaf, path) {
    if (!(index >= 0 && index < size)) throw new Error(`leaf index ${index} is not in a tree of size ${size}`);
    let fn = BigInt(index), sn = BigInt(size - 1), r = leaf;
    for (const p of path) {
      if (sn === 0n) throw new Error(`the path is too long (${path.length} hashes)`);
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error(`the path is too short (${path.length} hashes)`);
    return r;
  }

  function parseNote(note) {
    const split = note.indexOf("\n\n");
    if (split < 0 || !note.endsWith("\n")) throw new Error("the checkpoint is not a signed note");
    const text = note.slice(0, split + 1);
    const lines = text.split("\n");
    if (lines.length < 4) throw new Error("the checkpoint has too few lines");
    const signatures = note.slice(split + 2, -1).split("\n").map((line) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) throw new Error("a signature line is malformed");
      return { name: m[1], blob: b64(m[2]) };
    });
    return { text, origin: lines[0], size: Number(lines[1]), root: b64(lines[2]), signatures };
  }

  async function checkSignature(cp, vkey) {
    // name+hex8+base64, split at the first two "+" only: standard base64 may itself hold "+".
    const text = vkey.trim();
    const first = text.indexOf("+");
    const second = first < 0 ? -1 : text.indexOf("+", first + 1);
    if (second < 0) throw new Error("the verifier key must look like name+hex8+base64");
    const name = text.slice(0, first), hexId = text.slice(first + 1, second), key64 = text.slice(second + 1);
    if (!/^[0-9a-fA-F]{8}$/.test(hexId)) throw new Error("the verifier key must look like name+hex8+base64");
    const raw = b64(key64);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("the verifier key is not an Ed25519 key");
    const pub = raw.slice(1);
    const id = (await sha256(concat(enc.encode(name + "\n"), new Uint8Array([1]), pub))).slice(0, 4);
    if (hex(id) !== hexId.toLowerCase()) throw new Error("the verifier key's ID does not match its name and key");
    if (cp.origin !== name) throw new Error(`the checkpoint is for log "${cp.origin}", the key for "${name}"`);
    const line = cp.signatures.find((s) => s.name === name && s.blob.length === 68 && same(s.blob.slice(0, 4), id));
    if (!line) throw new Error(`no signature by ${name} on the checkpoint`);
    const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    const good = await crypto.subtle.verify({ name: "Ed25519" }, key, line.blob.slice(4), enc.encode(cp.text));
    if (!good) throw new Error(`the signature by ${name} does not verify`);
    return name;
  }

  function step(ok, text) {
    const li = document.createElement("li");
    li.className = ok === true ? "ok" : ok === false ? "bad" : "skip";
    li.textContent = (ok === true ? "✓ " : ok === false ? "✗ " : "– ") + text;
    checks.appendChild(li);
  }

  function show(state, text) {
    verdict.className = "verdict " + state;
    verdict.dataset.verdict = state;
    verdict.textContent = text;
    section.dataset.verdict = state;
  }

  async function run() {
    checks.replaceChildren();
    show("pending", "Checking in your browser…");
    let proof;
    try {
      const answer = await fetch(section.dataset.proofUrl, { credentials: "same-origin", cache: "no-store" });
      if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
      proof = await answer.json();
    } catch (err) {
      show("bad", "FAILED: the proof could not be fetched: " + err.message);
      return;
    }
    try {
      const leaf = b64(proof.leaf);
      const fields = JSON.parse(new TextDecoder().decode(leaf));
      if (fields.id !== section.dataset.recordId) throw new Error(`the leaf is for entry ${fields.id}, not this record`);
      step(true, `the leaf names this record (${fields.kind}, ${fields.system}) and commits to its body`);
      const lh = await leafHash(leaf);
      if (!same(lh, b64(proof.leaf_hash))) throw new Error("the leaf does not hash to the stated leaf hash");
      step(true, `leaf hash SHA-256(0x00 ‖ leaf) = ${hex(lh).slice(0, 16)}…`);
      const cp = parseNote(proof.checkpoint);
      if (cp.size !== proof.tree_size) throw new Error(`the proof is for size ${proof.tree_size}, the checkpoint signs ${cp.size}`);
      const root = await rootFromPath(proof.leaf_index, proof.tree_size, lh, proof.proof.map(b64));
      if (!same(root, cp.root)) throw new Error(`the path leads to ${hex(root).slice(0, 16)}…, not to the checkpoint's root ${hex(cp.root).slice(0, 16)}…`);
      step(true, `${proof.proof.length} path hashes lead to the root of the tree of ${cp.size} entries`);
      const vkey = vkeyInput ? vkeyInput.value.trim() : "";
      if (!vkey) {
        step(null, "signature not checked: no verifier key given");
        show("unsigned", `Included in the tree of ${cp.size} entries (signature not checked: paste the log's verifier key)`);
        return;
      }
      const signer = await checkSignature(cp, vkey);
      step(true, `the checkpoint is signed by ${signer} (Ed25519)`);
      show("ok", `Verified: this record is entry ${proof.seq} of the log of ${cp.size} entries signed by ${signer}`);
    } catch (err) {
      step(false, err.message);
      show("bad", "FAILED: " + err.message);
    }
  }

  const form = document.getElementById("vkey-form");
  if (form) form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
  run();
})();
