// A browser peer of the videortc DataChannel protocol (SPEC §3, §4), modelled on
// suconghou/libwebrtc: signalling over a WebSocket (`WS_BASE + my id`), one RTCPeerConnection
// per remote id without ICE servers, the "dc" DataChannel with maxPacketLifeTime 2000, binary
// chunks `["VID:ITAG|N",i,n]` (30 bytes, space padded) + payload. Driven by the tests over CDP:
// every entry point returns a promise of plain JSON.
'use strict';

(() => {
  const HEADER = 30;
  const PAYLOAD = 51200;
  const ascii = new TextDecoder('latin1');
  const now = () => performance.now();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const round = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

  // One remote peer: its connection, channel and what arrived on it.
  class Link {
    constructor(owner, remote) {
      this.owner = owner;
      this.remote = remote;
      this.pc = null;
      this.dc = null;
      this.candidates = []; // remote candidates that arrived before the remote description
      this.waiters = new Set(); // {pred, resolve} for text messages
      this.texts = []; // the last text messages received
      this.errors = [];
      this.restart = 0;
      this.stat = { textIn: 0, binIn: 0, binBytes: 0, pingsIn: 0, badHeaders: 0, stray: 0, opens: 0, offers: 0, answers: 0 };
      this.keyBytes = new Map(); // "VID:ITAG|N" -> payload bytes received
      this.lastBinaryAt = 0;
    }

    error(what, e) {
      const text = `${what}: ${e && e.message ? e.message : e}`;
      this.errors.push(text);
      console.warn(`[${this.owner.me.slice(0, 8)}→${this.remote.slice(0, 8)}] ${text}`);
    }

    open() {
      return !!this.dc && this.dc.readyState === 'open';
    }

    // A fresh RTCPeerConnection, closing the previous one.
    reset() {
      clearTimeout(this.restart);
      if (this.dc) try { this.dc.close(); } catch (e) { /* closed */ }
      if (this.pc) try { this.pc.close(); } catch (e) { /* closed */ }
      this.dc = null;
      this.candidates = [];
      const pc = new RTCPeerConnection({ iceServers: [] });
      this.pc = pc;
      pc.onicecandidate = (ev) => {
        if (ev.candidate && pc === this.pc) {
          this.owner.signal({ event: 'candidate', from: this.owner.me, to: this.remote, data: ev.candidate.toJSON() });
        }
      };
      pc.ondatachannel = (ev) => {
        if (pc !== this.pc) return;
        if (this.dc && this.dc !== ev.channel) try { this.dc.close(); } catch (e) { /* closed */ }
        this.attach(ev.channel);
      };
      pc.onconnectionstatechange = () => {
        if (pc === this.pc && pc.connectionState === 'failed') this.error('connection', 'failed');
      };
      return pc;
    }

    attach(dc) {
      this.dc = dc;
      dc.binaryType = 'arraybuffer';
      dc.onopen = () => { this.stat.opens++; };
      dc.onerror = (ev) => this.error('datachannel', ev.error || 'error');
      dc.onmessage = (ev) => {
        clearTimeout(this.restart);
        if (typeof ev.data === 'string') this.onText(ev.data);
        else this.owner.onBinary(this, ev.data);
      };
    }

    // The remote came online: we initiate (or probe an open channel, as libwebrtc does).
    connect() {
      if (this.pc && this.pc.connectionState === 'connected' && this.open()) {
        this.send(JSON.stringify({ event: 'ping' }));
        clearTimeout(this.restart);
        this.restart = setTimeout(() => { this.reset(); this.offer(); }, 5000);
        return;
      }
      this.reset();
      this.offer();
    }

    async offer() {
      const pc = this.pc;
      this.attach(pc.createDataChannel('dc', { maxPacketLifeTime: 2000 }));
      try {
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        this.stat.offers++;
        this.owner.signal({ event: 'offer', from: this.owner.me, to: this.remote, data: { type: offer.type, sdp: offer.sdp } });
      } catch (e) {
        this.error('offer', e);
      }
    }

    async onOffer(sdp) {
      // A new offer means the remote (re)created its side: answer on a fresh connection.
      if (!this.pc || this.pc.localDescription || this.pc.remoteDescription) this.reset();
      const pc = this.pc;
      try {
        await pc.setRemoteDescription(sdp);
        this.flushCandidates();
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        this.stat.answers++;
        this.owner.signal({ event: 'answer', from: this.owner.me, to: this.remote, data: { type: answer.type, sdp: answer.sdp } });
      } catch (e) {
        this.error('answer', e);
      }
    }

    async onAnswer(sdp) {
      if (!this.pc || this.pc.signalingState !== 'have-local-offer') return this.error('answer', `unexpected in ${this.pc && this.pc.signalingState}`);
      try {
        await this.pc.setRemoteDescription(sdp);
        this.flushCandidates();
      } catch (e) {
        this.error('setRemoteDescription(answer)', e);
      }
    }

    onCandidate(c) {
      if (!this.pc || !this.pc.remoteDescription) return void this.candidates.push(c);
      this.pc.addIceCandidate(c).catch((e) => this.error(`addIceCandidate ${JSON.stringify(c)}`, e));
    }

    flushCandidates() {
      const pending = this.candidates;
      this.candidates = [];
      pending.forEach((c) => this.onCandidate(c));
    }

    onText(text) {
      this.stat.textIn++;
      this.texts.push(text.length > 300 ? text.slice(0, 300) + '…' : text);
      if (this.texts.length > 50) this.texts.shift();
      let msg;
      try { msg = JSON.parse(text); } catch (e) { return this.error('bad JSON from remote', text.slice(0, 100)); }
      if (msg && msg.event === 'ping') {
        this.stat.pingsIn++;
        this.send(JSON.stringify({ event: 'pong' }));
      }
      for (const w of [...this.waiters]) {
        if (w.pred(msg)) { this.waiters.delete(w); w.resolve(msg); }
      }
    }

    // Resolves with the first text message matching `pred`, or null after `ms`.
    wait(pred, ms) {
      return new Promise((resolve) => {
        const w = { pred, resolve };
        this.waiters.add(w);
        setTimeout(() => { if (this.waiters.delete(w)) resolve(null); }, ms);
      });
    }

    send(data) {
      if (!this.open()) throw new Error(`channel to ${this.remote} is not open (${this.dc ? this.dc.readyState : 'none'})`);
      this.dc.send(data);
    }
  }

  class Peer {
    constructor(me, wsBase, only) {
      this.me = me;
      this.wsBase = wsBase;
      this.only = only && only.length ? only : null; // connect to these ids only (null: all)
      this.links = new Map();
      this.transfers = new Map(); // "remote|VID:ITAG|N" -> transfer
      this.queue = []; // signalling messages waiting for the socket
      this.sig = { opens: 0, closes: 0, inits: [], onlines: [] };
      this.closed = false;
      this.dial();
    }

    dial() {
      const ws = new WebSocket(this.wsBase + this.me);
      this.ws = ws;
      ws.onopen = () => {
        this.sig.opens++;
        const q = this.queue;
        this.queue = [];
        q.forEach((m) => ws.send(m));
      };
      ws.onmessage = (ev) => {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return console.warn('bad signalling frame', ev.data); }
        this.onSignal(msg);
      };
      ws.onclose = () => {
        this.sig.closes++;
        if (!this.closed && this.ws === ws) setTimeout(() => this.dial(), 300);
      };
    }

    signal(msg) {
      const text = JSON.stringify(msg);
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
      else this.queue.push(text);
    }

    wants(id) {
      return id !== this.me && (!this.only || this.only.includes(id));
    }

    link(id) {
      let l = this.links.get(id);
      if (!l) { l = new Link(this, id); this.links.set(id, l); }
      return l;
    }

    onSignal(msg) {
      if (!msg || msg.from === this.me) return;
      switch (msg.event) {
        case 'init':
          this.sig.inits.push(msg.ids || []);
          // They initiate to us: just get ready for their offers.
          (msg.ids || []).filter((id) => this.wants(id)).forEach((id) => this.link(id));
          break;
        case 'online':
          this.sig.onlines.push(msg.id);
          if (this.wants(msg.id)) this.link(msg.id).connect();
          break;
        case 'offer':
          if (this.wants(msg.from)) this.link(msg.from).onOffer(msg.data);
          break;
        case 'answer':
          if (this.links.has(msg.from)) this.links.get(msg.from).onAnswer(msg.data);
          break;
        case 'candidate':
          if (this.links.has(msg.from)) this.links.get(msg.from).onCandidate(msg.data);
          break;
        default:
          console.warn('unknown signalling event', JSON.stringify(msg).slice(0, 200));
      }
    }

    onBinary(link, buf) {
      const st = link.stat;
      st.binIn++;
      st.binBytes += buf.byteLength;
      link.lastBinaryAt = now();
      const raw = ascii.decode(new Uint8Array(buf, 0, Math.min(HEADER, buf.byteLength)));
      const meta = raw.trimEnd();
      let head = null;
      try { head = JSON.parse(meta); } catch (e) { /* below */ }
      const valid = buf.byteLength >= HEADER && /^[!-~]+$/.test(meta) && Array.isArray(head) && head.length === 3 &&
        typeof head[0] === 'string' && Number.isInteger(head[1]) && Number.isInteger(head[2]) &&
        head[1] >= 0 && head[1] < head[2] && buf.byteLength - HEADER <= PAYLOAD;
      if (!valid) {
        st.badHeaders++;
        return link.error('bad chunk header', JSON.stringify(raw));
      }
      const [key, i, n] = head;
      const size = buf.byteLength - HEADER;
      link.keyBytes.set(key, (link.keyBytes.get(key) || 0) + size);
      const t = this.transfers.get(`${link.remote}|${key}`);
      if (!t || t.doneAt !== null) { st.stray++; return; }
      if (t.n < 0) t.n = n;
      if (t.n !== n) t.problems.push(`chunk ${i}: n=${n}, was ${t.n}`);
      if (t.firstAt === null) t.firstAt = now();
      if (t.chunks[i]) { t.dups++; return; }
      // Every chunk but the last carries the same payload size (51,200 with the default
      // policy; a policy may choose another, so the first full chunk sets it).
      if (i < n - 1) {
        if (t.payload === null) t.payload = size;
        else if (size !== t.payload) t.problems.push(`chunk ${i}/${n} has ${size} bytes, others ${t.payload}`);
      }
      t.chunks[i] = new Uint8Array(buf, HEADER);
      t.got++;
      t.bytes += size;
      if (t.quitAfter && t.got === t.quitAfter) {
        // Cancel from inside the message handler: as early as the protocol allows.
        link.send(JSON.stringify({ event: 'quit', data: t.quitAll ? { id: '', index: 0 } : { id: t.id, index: t.index } }));
      }
      if (t.got === t.n) {
        t.doneAt = now();
        t.finished();
      }
    }

    link_open(remote) {
      const l = this.links.get(remote);
      if (!l || !l.open()) throw new Error(`no open channel to ${remote}`);
      return l;
    }

    // --- entry points for the tests ---

    async ready(remote, ms) {
      const t0 = now();
      while (now() - t0 < ms) {
        const l = this.links.get(remote);
        if (l && l.open()) return { ms: round(now() - t0) };
        await sleep(20);
      }
      throw new Error(`no open channel to ${remote} after ${ms} ms: ${JSON.stringify(this.stats(remote))}`);
    }

    async ping(remote, ms) {
      const l = this.link_open(remote);
      const t0 = now();
      const pong = l.wait((m) => m && m.event === 'pong', ms);
      l.send(JSON.stringify({ event: 'ping' }));
      if (!(await pong)) throw new Error(`no pong from ${remote} within ${ms} ms`);
      return { ms: round(now() - t0) };
    }

    async query(remote, id, index, ms) {
      const l = this.link_open(remote);
      const t0 = now();
      const found = l.wait((m) => m && m.event === 'found' && m.data && m.data.id === id && m.data.index === index, ms);
      l.send(JSON.stringify({ event: 'query', data: { id, index } }));
      const m = await found;
      return m ? { found: true, ms: round(now() - t0), reply: m } : { found: false };
    }

    // With `quitAfter` > 0, sends `quit` (or quit-all with `quitAll`) once that many chunks arrived.
    startResolve(remote, id, index, quitAfter, quitAll) {
      const l = this.link_open(remote);
      const t = {
        id, index, quitAfter: quitAfter || 0, quitAll: !!quitAll,
        n: -1, got: 0, bytes: 0, dups: 0, chunks: [], problems: [], payload: null, sentAt: now(), firstAt: null, doneAt: null,
      };
      t.done = new Promise((r) => { t.finished = r; });
      this.transfers.set(`${remote}|${id}|${index}`, t);
      l.send(JSON.stringify({ event: 'resolve', data: { id, index } }));
      return true;
    }

    // Several resolves sent back to back: [{id, index, quitAfter, quitAll}, ...].
    startMany(remote, list) {
      list.forEach((r) => this.startResolve(remote, r.id, r.index, r.quitAfter, r.quitAll));
      return true;
    }

    progress(remote, id, index) {
      const t = this.transfers.get(`${remote}|${id}|${index}`);
      const l = this.links.get(remote);
      return {
        chunks: t ? t.got : 0,
        n: t ? t.n : -1,
        bytes: t ? t.bytes : 0,
        complete: !!t && t.doneAt !== null,
        received: l ? l.keyBytes.get(`${id}|${index}`) || 0 : 0,
      };
    }

    async finish(remote, id, index, ms) {
      const t = this.transfers.get(`${remote}|${id}|${index}`);
      if (!t) throw new Error(`no transfer ${id}|${index}`);
      const ok = await Promise.race([t.done.then(() => true), sleep(ms).then(() => false)]);
      if (!ok) throw new Error(`${id}|${index} incomplete after ${ms} ms: ${t.got}/${t.n} chunks, ${t.bytes} bytes`);
      const all = new Uint8Array(t.bytes);
      let at = 0;
      for (const c of t.chunks) { all.set(c, at); at += c.byteLength; }
      const digest = hex(await crypto.subtle.digest('SHA-256', all));
      t.chunks = []; // keep the transfer (for stray accounting), drop its bytes
      return {
        len: t.bytes, sha256: digest, chunks: t.n, dups: t.dups, problems: t.problems, payload: t.payload,
        first_ms: round(t.firstAt - t.sentAt), total_ms: round(t.doneAt - t.sentAt),
      };
    }

    async resolve(remote, id, index, ms) {
      this.startResolve(remote, id, index);
      return this.finish(remote, id, index, ms);
    }

    quit(remote, id, index) {
      this.link_open(remote).send(JSON.stringify({ event: 'quit', data: { id, index } }));
      return true;
    }

    quitAll(remote) {
      return this.quit(remote, '', 0);
    }

    // Waits until no binary message has arrived from `remote` for `idle` ms (at most `ms`).
    async quiet(remote, idle, ms) {
      const l = this.links.get(remote);
      const t0 = now();
      while (now() - t0 < ms) {
        if (!l || now() - Math.max(l.lastBinaryAt, t0) >= idle) return { ms: round(now() - t0) };
        await sleep(20);
      }
      throw new Error(`binary messages still arriving after ${ms} ms`);
    }

    // {text: "..."} | {repeat: ["x", n]} | {binary: n} (bytes 0..255 repeating)
    sendRaw(remote, spec) {
      const l = this.link_open(remote);
      if (spec.text !== undefined) l.send(spec.text);
      else if (spec.repeat) l.send(spec.repeat[0].repeat(spec.repeat[1]));
      else l.send(Uint8Array.from({ length: spec.binary }, (_, i) => i & 255).buffer);
      return true;
    }

    stats(remote) {
      const l = this.links.get(remote);
      return {
        signal: this.sig,
        link: l ? {
          pc: l.pc ? l.pc.connectionState : null, ice: l.pc ? l.pc.iceConnectionState : null,
          dc: l.dc ? l.dc.readyState : null, ...l.stat, errors: l.errors, texts: l.texts,
        } : null,
      };
    }

    close() {
      this.closed = true;
      if (this.ws) this.ws.close();
      this.links.forEach((l) => { if (l.pc) l.pc.close(); });
      return true;
    }
  }

  const peers = new Map();
  window.vt = {
    start(me, wsBase, only) {
      if (peers.has(me)) throw new Error(`peer ${me} exists`);
      peers.set(me, new Peer(me, wsBase, only));
      return true;
    },
    peer(me) {
      const p = peers.get(me);
      if (!p) throw new Error(`no peer ${me}`);
      return p;
    },
  };
})();
