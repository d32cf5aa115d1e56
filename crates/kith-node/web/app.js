// kith web app: served by the node, talks only to this node's API.
//
// Everything from peers (post text, names, bios, group names) is untrusted:
// it is put into the page as text nodes, never as HTML, and links in post
// text become anchors only for http(s) URLs. No remote images are loaded.
// The API token lives in this tab's session storage and goes in a header.
"use strict";

const MAX_POST_CHARS = 10000;
const PAGE = 50;
const REACTIONS = ["👍", "❤️", "🎉", "😂", "🤔"];

const state = {
  token: sessionStorage.getItem("kith-token"),
  me: null,
  view: null,      // what is shown: { kind, space, author, ... }
  oldest: null,    // last post id of the shown feed, for the next page
  loading: false,
  done: false,
  groups: new Map(), // group id → name, for the marker on group posts
  render: 0,         // bumped by each full render; an older one that
                     // finishes later is dropped instead of drawn twice
};

// ---- small DOM helpers: text only, never HTML ----------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// Post text with links: only http and https URLs become anchors; the rest,
// `javascript:` included, stays text.
function richText(text) {
  const out = el("div", { class: "text" });
  const re = /\bhttps?:\/\/[^\s<>"']+/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    out.append(document.createTextNode(text.slice(last, m.index)));
    let url = null;
    try {
      url = new URL(m[0]);
    } catch (_) {
      url = null;
    }
    if (url && (url.protocol === "http:" || url.protocol === "https:")) {
      out.append(el("a", { href: url.href, rel: "noopener noreferrer nofollow", target: "_blank" }, m[0]));
    } else {
      out.append(document.createTextNode(m[0]));
    }
    last = m.index + m[0].length;
  }
  out.append(document.createTextNode(text.slice(last)));
  return out;
}

function toast(message, bad) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.className = bad ? "toast bad" : "toast";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

function shortId(id) {
  return "…" + String(id).slice(-8);
}

function who(name, id) {
  return name || shortId(id);
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleString();
}

// ---- the API ----------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + state.token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch (_) {
    value = null;
  }
  if (r.status === 401) {
    sessionStorage.removeItem("kith-token");
    state.token = null;
    showLoggedOut();
    throw new Error("logged out");
  }
  if (!r.ok) throw new Error((value && value.message) || r.statusText);
  return value;
}

// "1 member", "2 members".
function count(n, noun) {
  return n + " " + noun + (n === 1 ? "" : "s");
}

function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.set(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}

// ---- posts --------------------------------------------------------------------

function postNode(p, opts) {
  const mine = state.me && p.author === state.me.identity;
  const node = el("article", { class: "post", "data-id": p.id, tabindex: "0" });
  const head = el("header", {},
    el("a", { class: "author", href: "#/person/" + p.author }, who(p.author_name, p.author)),
    " ",
    el("a", { class: "time", href: "#/post/" + p.id }, when(p.created_at)),
    p.edited ? el("span", { class: "flag" }, " edited") : null,
    p.author_muted ? el("span", { class: "flag" }, " muted") : null,
    p.reply_to ? el("a", { class: "flag", href: "#/post/" + p.reply_to }, " reply") : null,
    p.space && p.space !== "public"
      ? el("a", { class: "flag group-marker", href: "#/group/" + p.space }, " in " + (state.groups.get(p.space) || "a group"))
      : null);
  node.append(head);
  if (p.deleted) node.append(el("div", { class: "text deleted" }, "[deleted]"));
  else if (p.text === null || p.text === undefined) node.append(el("div", { class: "text deleted" }, "[text not here yet]"));
  else node.append(richText(p.text));
  const bar = el("div", { class: "actions" });
  for (const e of REACTIONS) {
    const n = (p.reactions && p.reactions[e]) || 0;
    bar.append(el("button", { class: "react", "aria-label": "react " + e, onclick: () => react(p.id, e) }, e, n ? " " + n : ""));
  }
  for (const [e, n] of Object.entries(p.reactions || {})) {
    if (!REACTIONS.includes(e)) bar.append(el("span", { class: "react other" }, e + " " + n));
  }
  bar.append(el("a", { class: "replies", href: "#/post/" + p.id }, p.replies ? p.replies + (p.replies === 1 ? " reply" : " replies") : "reply"));
  if (mine && p.text !== null && p.text !== undefined && !(opts && opts.noEdit)) {
    bar.append(el("button", { class: "edit", onclick: () => editPost(node, p) }, "edit"));
    bar.append(el("button", { class: "delete", onclick: () => deletePost(p.id) }, "delete"));
  }
  node.append(bar);
  return node;
}

async function react(id, emoji) {
  try {
    const r = await api("PUT", "/api/posts/" + id + "/reactions/" + encodeURIComponent(emoji));
    if (!r.changed) await api("DELETE", "/api/posts/" + id + "/reactions/" + encodeURIComponent(emoji));
    await refreshPost(id);
  } catch (e) {
    toast(e.message, true);
  }
}

function editPost(node, p) {
  const box = el("textarea", { class: "edit-text", "aria-label": "new text", maxlength: MAX_POST_CHARS });
  box.value = p.text;
  const form = el("form", { class: "edit-form", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", "/api/posts/" + p.id, { text: box.value });
      await refreshPost(p.id);
    } catch (e) {
      toast(e.message, true);
    }
  } }, box, el("button", { type: "submit" }, "save"), el("button", { type: "button", onclick: () => refreshPost(p.id) }, "cancel"));
  node.replaceChildren(form);
  box.focus();
}

async function deletePost(id) {
  if (!confirm("Delete this post? Every version of its text is erased, here and on each node the deletion reaches.")) return;
  try {
    await api("DELETE", "/api/posts/" + id);
    await refreshPost(id);
  } catch (e) {
    toast(e.message, true);
  }
}

// Re-renders every shown copy of a post from the node.
async function refreshPost(id) {
  const shown = document.querySelectorAll('article.post[data-id="' + CSS.escape(id) + '"]');
  if (!shown.length) return;
  let p = null;
  try {
    const thread = await api("GET", "/api/posts/" + id);
    p = thread[0];
  } catch (_) {
    return;
  }
  for (const n of shown) n.replaceWith(postNode(p));
}

function composer(placeholder, submit) {
  const box = el("textarea", { "aria-label": placeholder, placeholder, maxlength: MAX_POST_CHARS, rows: 3 });
  const count = el("span", { class: "count", "aria-live": "polite" }, "0 / " + MAX_POST_CHARS);
  const button = el("button", { type: "submit", disabled: true }, "Post");
  const update = () => {
    const n = [...box.value].length;
    count.textContent = n + " / " + MAX_POST_CHARS;
    button.disabled = n === 0 || n > MAX_POST_CHARS || !box.value.trim();
  };
  box.addEventListener("input", update);
  const form = el("form", { class: "compose", onsubmit: async (ev) => {
    ev.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    try {
      await submit(box.value);
      box.value = "";
    } catch (e) {
      toast(e.message, true);
    }
    update();
  } }, box, el("div", { class: "compose-bar" }, count, button));
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
  });
  return form;
}

// A feed with infinite scroll: pages of PAGE posts from the indexes.
function feedView(title, params, extra) {
  const main = clear(document.getElementById("main"));
  main.append(el("h1", {}, title));
  if (extra) main.append(extra);
  const list = el("section", { id: "feed", class: "feed", "aria-label": title });
  const more = el("button", { id: "more", class: "more", onclick: () => loadMore(params) }, "Older posts");
  main.append(list, more);
  state.oldest = null;
  state.done = false;
  loadMore(params);
}

async function loadMore(params) {
  if (state.loading || state.done) return;
  state.loading = true;
  try {
    const posts = await api("GET", "/api/feed" + q({ ...params, limit: PAGE, before: state.oldest }));
    const list = document.getElementById("feed");
    if (!list) return;
    for (const p of posts) list.append(postNode(p));
    if (posts.length) state.oldest = posts[posts.length - 1].id;
    if (posts.length < PAGE) {
      state.done = true;
      const more = document.getElementById("more");
      if (more) more.hidden = true;
      if (!list.firstChild) list.append(el("p", { class: "empty" }, "No posts yet."));
    }
  } catch (e) {
    toast(e.message, true);
  } finally {
    state.loading = false;
  }
}

// New posts of the shown feed, on top, without a reload.
async function prependNewest(params) {
  const list = document.getElementById("feed");
  if (!list) return;
  const posts = await api("GET", "/api/feed" + q({ ...params, limit: 20 }));
  const empty = list.querySelector(".empty");
  for (const p of posts.reverse()) {
    if (list.querySelector('article.post[data-id="' + CSS.escape(p.id) + '"]')) continue;
    if (empty) empty.remove();
    list.prepend(postNode(p));
  }
}

window.addEventListener("scroll", () => {
  if (!state.view || !state.view.feed) return;
  if (window.innerHeight + window.scrollY >= document.body.offsetHeight - 400) loadMore(state.view.feed);
});

// ---- views ------------------------------------------------------------------

// Home: public posts and those of your groups, newest first.
function homeView() {
  state.view = { kind: "home", feed: { home: true } };
  feedView("Home", { home: true }, composer("What's new?", async (text) => {
    await api("POST", "/api/posts", { text });
    await prependNewest({ home: true });
  }));
}

async function threadView(id) {
  state.view = { kind: "thread", id };
  // A reply redraws the thread twice at once (its own call, and the live
  // event of the new post): only the newest drawing goes on the page, and
  // it replaces the page in one step.
  const render = ++state.render;
  let thread;
  try {
    thread = await api("GET", "/api/posts/" + id);
  } catch (e) {
    if (render !== state.render) return;
    clear(document.getElementById("main")).append(el("h1", {}, "Thread"), el("p", { class: "empty" }, e.message));
    return;
  }
  if (render !== state.render) return;
  const main = clear(document.getElementById("main"));
  main.append(el("h1", {}, "Thread"));
  const list = el("section", { class: "thread" });
  for (const entry of thread) {
    const n = postNode(entry);
    n.style.marginLeft = Math.min(entry.depth, 8) * 1.2 + "rem";
    list.append(n);
  }
  main.append(list);
  const root = thread[0];
  if (root.edited) {
    const hist = el("details", { class: "history" }, el("summary", {}, "Edit history"));
    hist.addEventListener("toggle", async () => {
      if (!hist.open || hist.dataset.loaded) return;
      hist.dataset.loaded = "1";
      for (const v of await api("GET", "/api/posts/" + id + "/history")) {
        hist.append(el("div", { class: "version" }, el("span", { class: "time" }, when(v.at)), richText(v.text)));
      }
    });
    main.append(hist);
  }
  if (root.text !== null && root.text !== undefined) {
    main.append(composer("Reply", async (text) => {
      await api("POST", "/api/posts", { text, reply_to: id });
      await threadView(id);
    }));
  }
}

async function personView(id) {
  state.view = { kind: "person", id, feed: { author: id } };
  let p;
  try {
    p = await api("GET", "/api/people/" + id);
  } catch (e) {
    clear(document.getElementById("main")).append(el("p", { class: "empty" }, e.message));
    return;
  }
  const me = state.me && state.me.identity === id;
  const card = el("section", { class: "card" },
    el("p", { class: "id" }, p.id),
    p.bio ? el("p", { class: "bio" }, p.bio) : null);
  if (!me) {
    card.append(el("div", { class: "actions" },
      el("button", { onclick: async () => { await api(p.following ? "DELETE" : "PUT", "/api/people/" + id + "/follow"); personView(id); } }, p.following ? "Unfollow" : "Follow"),
      el("button", { onclick: async () => { await api(p.blocked ? "DELETE" : "PUT", "/api/people/" + id + "/block"); personView(id); } }, p.blocked ? "Unblock" : "Block"),
      el("button", { title: "Their posts leave your timelines; only you know", onclick: async () => { await api(p.muted ? "DELETE" : "PUT", "/api/people/" + id + "/mute"); personView(id); } }, p.muted ? "Unmute" : "Mute")));
    const labels = el("div", { class: "labels" }, "Labels (only you see them): ");
    for (const l of p.labels || []) {
      labels.append(el("button", { class: "label", title: "remove", onclick: async () => { await api("POST", "/api/people/" + id + "/labels", { remove: [l] }); personView(id); } }, "#" + l + " ×"));
    }
    const input = el("input", { "aria-label": "add a label", placeholder: "colleague, customer, vendor, friend…", list: "label-ideas" });
    labels.append(el("form", { class: "inline", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", "/api/people/" + id + "/labels", { add: [input.value] });
        personView(id);
      } catch (e) {
        toast(e.message, true);
      }
    } }, input, el("button", { type: "submit" }, "Add"),
    el("datalist", { id: "label-ideas" }, ["colleague", "customer", "vendor", "friend"].map((v) => el("option", { value: v })))));
    card.append(labels);
  }
  feedView(who(p.name, p.id), { author: id }, card);
}

async function peopleView() {
  state.view = { kind: "people" };
  const main = clear(document.getElementById("main"));
  main.append(el("h1", {}, "People"));
  const add = el("input", { "aria-label": "follow by id", placeholder: "did:key:z6Mk… to follow" });
  main.append(el("form", { class: "inline", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", "/api/people/" + encodeURIComponent(add.value.trim()) + "/follow");
      peopleView();
    } catch (e) {
      toast(e.message, true);
    }
  } }, add, el("button", { type: "submit" }, "Follow")));
  const sections = [["Nearby on your network", { nearby: true }], ["Everyone you know", {}]];
  for (const [title, params] of sections) {
    const list = el("ul", { class: "people" });
    main.append(el("h2", {}, title), list);
    try {
      const people = await api("GET", "/api/people" + q(params));
      if (!people.length) list.append(el("li", { class: "empty" }, "Nobody yet."));
      for (const p of people) {
        list.append(el("li", {},
          el("a", { href: "#/person/" + p.id }, who(p.name, p.id)),
          p.following ? el("span", { class: "tag" }, "following") : null,
          p.blocked ? el("span", { class: "tag" }, "blocked") : null,
          p.muted ? el("span", { class: "tag" }, "muted") : null,
          (p.labels || []).map((l) => el("span", { class: "tag" }, "#" + l))));
      }
    } catch (e) {
      list.append(el("li", { class: "empty" }, e.message));
    }
  }
}

async function groupsView() {
  state.view = { kind: "groups" };
  const main = clear(document.getElementById("main"));
  main.append(el("h1", {}, "Groups"));
  const name = el("input", { "aria-label": "new group name", placeholder: "New group name", required: true });
  main.append(el("form", { class: "inline", id: "create-group", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const g = await api("POST", "/api/groups", { name: name.value });
      location.hash = "#/group/" + g.id;
    } catch (e) {
      toast(e.message, true);
    }
  } }, name, el("button", { type: "submit" }, "Create")));
  const key = el("input", { "aria-label": "invite key", placeholder: "kith-invite-… to join" });
  const joinButton = el("button", { type: "submit" }, "Join");
  main.append(el("form", { class: "inline", id: "join-group", onsubmit: async (ev) => {
    ev.preventDefault();
    joinButton.disabled = true;
    joinButton.textContent = "Joining…";
    try {
      const g = await api("POST", "/api/groups/join", { key: key.value.trim() });
      location.hash = "#/group/" + g.id;
    } catch (e) {
      toast(e.message, true);
    } finally {
      joinButton.disabled = false;
      joinButton.textContent = "Join";
    }
  } }, key, joinButton));
  const list = el("ul", { class: "groups" });
  main.append(list);
  const groups = await api("GET", "/api/groups");
  if (!groups.length) list.append(el("li", { class: "empty" }, "No groups yet."));
  for (const g of groups) {
    list.append(el("li", {}, el("a", { href: "#/group/" + g.id }, g.name), " ",
      el("span", { class: "tag" }, g.role || "left"), " ", count(g.members, "member")));
  }
}

async function groupView(id) {
  state.view = { kind: "group", id, feed: { group: id } };
  let g;
  try {
    g = await api("GET", "/api/groups/" + id);
  } catch (e) {
    clear(document.getElementById("main")).append(el("p", { class: "empty" }, e.message));
    return;
  }
  const admin = g.role === "admin";
  const side = el("section", { class: "card group" });
  if (g.about) side.append(el("p", { class: "bio" }, g.about));
  const members = el("ul", { class: "members" });
  for (const m of g.members) {
    const li = el("li", {}, el("a", { href: "#/person/" + m.id }, who(m.name, m.id)), " ", el("span", { class: "tag" }, m.role));
    if (admin && state.me && m.id !== state.me.identity) {
      if (m.role !== "admin") li.append(el("button", { onclick: () => groupAct("POST", "/api/groups/" + id + "/members/" + m.id + "/promote", id) }, "make admin"));
      li.append(el("button", { class: "danger", onclick: () => { if (confirm("Remove this member? They keep what they had and get nothing after.")) groupAct("DELETE", "/api/groups/" + id + "/members/" + m.id, id); } }, "remove"));
    }
    members.append(li);
  }
  side.append(el("h2", {}, "Members"), members);
  if (admin) {
    const invites = el("div", { class: "invites" });
    const uses = el("input", { type: "number", min: 1, value: 1, "aria-label": "uses" });
    invites.append(el("form", { class: "inline", id: "invite-form", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const inv = await api("POST", "/api/groups/" + id + "/invites", { uses: Number(uses.value) });
        state.lastInvite = { group: id, inv };
        showInvite(document.querySelector(".invites") || invites, inv);
      } catch (e) {
        toast(e.message, true);
      }
    } }, el("label", {}, "Uses ", uses), el("button", { type: "submit" }, "Make an invite")));
    // A key just made stays on screen when the page is drawn again (making
    // the invite changed the group's log, which redraws the page).
    if (state.lastInvite && state.lastInvite.group === id) showInvite(invites, state.lastInvite.inv);
    const open = (g.invites || []).filter((i) => i.open);
    if (open.length) {
      const ul = el("ul", { class: "open-invites" });
      for (const i of open) {
        ul.append(el("li", {}, i.id + " · " + i.used + "/" + i.uses + " used · until " + when(i.expires_at) + " ",
          el("button", { onclick: () => groupAct("DELETE", "/api/groups/" + id + "/invites/" + i.id, id) }, "revoke")));
      }
      invites.append(el("h3", {}, "Open invites"), ul);
    }
    side.append(el("h2", {}, "Invite"), invites);
  }
  if (g.role) {
    side.append(el("button", { class: "danger", onclick: () => { if (confirm("Leave this group?")) groupAct("POST", "/api/groups/" + id + "/leave", id); } }, "Leave the group"));
  }
  const compose = g.role ? composer("Post to " + g.name, async (text) => {
    await api("POST", "/api/posts", { text, group: id });
    await prependNewest({ group: id });
  }) : null;
  feedView(g.name, { group: id }, el("div", {}, side, compose));
}

function showInvite(container, inv) {
  const old = container.querySelector(".new-invite");
  if (old) old.remove();
  const keyField = el("input", { class: "invite-key", readonly: true, value: inv.key, "aria-label": "invite key" });
  const copy = el("button", { class: "copy", onclick: async () => {
    try {
      await navigator.clipboard.writeText(inv.key);
      toast("Invite key copied");
    } catch (_) {
      keyField.select();
      toast("Select and copy the key");
    }
  } }, "Copy");
  // The QR code is an SVG the node made; shown as an image, never as markup.
  const img = el("img", { class: "qr", alt: "QR code of the invite key", src: "data:image/svg+xml;base64," + btoa(inv.qr_svg) });
  container.prepend(el("div", { class: "new-invite" }, img, el("div", { class: "inline" }, keyField, copy)));
}

async function groupAct(method, path, id) {
  try {
    await api(method, path);
    groupView(id);
  } catch (e) {
    toast(e.message, true);
  }
}

async function peersView() {
  state.view = { kind: "peers" };
  const main = clear(document.getElementById("main"));
  main.append(el("h1", {}, "Peers and sync"));
  const status = await api("GET", "/api/status");
  main.append(el("section", { class: "card" },
    el("p", {}, "Identity ", el("code", {}, status.identity)),
    el("p", {}, "Device ", el("code", {}, status.device)),
    el("p", {}, "Listening on ", status.listen.join(", ") || "—"),
    el("p", {}, count(status.counts.posts, "post") + ", " + count(status.counts.changes, "change") + " stored"),
    el("p", { id: "sync-state" }, status.syncing ? "Catching up…" : "Up to date")));
  const list = el("ul", { class: "peers" });
  main.append(el("h2", {}, status.peers + " connected"), list);
  for (const p of await api("GET", "/api/peers")) {
    list.append(el("li", {}, p.identity ? el("a", { href: "#/person/" + p.identity }, who(p.name, p.identity)) : shortId(p.device),
      " ", el("span", { class: "tag" }, p.via), " ", p.addresses.join(", ")));
  }
  const addr = el("input", { "aria-label": "peer address", placeholder: "/ip4/192.0.2.7/tcp/4610" });
  main.append(el("form", { class: "inline", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/peers", { address: addr.value.trim() });
      toast("Dialling " + addr.value);
    } catch (e) {
      toast(e.message, true);
    }
  } }, addr, el("button", { type: "submit" }, "Add peer")));
}

async function meView() {
  state.view = { kind: "me" };
  const main = clear(document.getElementById("main"));
  main.append(el("h1", {}, "Your profile"));
  const p = await api("GET", "/api/profile");
  const name = el("input", { "aria-label": "name", value: p.name || "" });
  const bio = el("textarea", { "aria-label": "bio", rows: 3 });
  bio.value = p.bio || "";
  main.append(el("form", { class: "card", onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", "/api/profile", { name: name.value, bio: bio.value });
      toast("Saved");
    } catch (e) {
      toast(e.message, true);
    }
  } }, el("label", {}, "Name ", name), el("label", {}, "Bio ", bio), el("p", { class: "id" }, "Your id: ", el("code", {}, p.id)), el("button", { type: "submit" }, "Save")));
}

// Group names for the markers on group posts.
async function loadGroupNames() {
  try {
    for (const g of await api("GET", "/api/groups")) state.groups.set(g.id, g.name);
  } catch (_) {
    // markers then say "a group"
  }
}

// ---- routing, login, live events --------------------------------------------

function route() {
  if (!state.token) return showLoggedOut();
  if (!location.hash.startsWith("#/group/" + (state.lastInvite && state.lastInvite.group))) state.lastInvite = null;
  const h = location.hash || "#/";
  const [, kind, arg] = h.match(/^#\/([a-z]*)\/?(.*)$/) || [];
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", a.dataset.nav === (kind || "home"));
  }
  const views = {
    "": homeView, post: () => threadView(arg), person: () => personView(arg), people: peopleView,
    groups: groupsView, group: () => groupView(arg), peers: peersView, me: meView,
  };
  const view = views[kind || ""] || homeView;
  Promise.resolve(view()).catch((e) => toast(e.message, true));
  document.getElementById("main").focus({ preventScroll: true });
}

function showLoggedOut() {
  const main = clear(document.getElementById("main"));
  main.append(el("h1", {}, "kith"), el("p", {}, "This tab is not logged in to your node. Run ", el("code", {}, "kith open"), " to open the app with a fresh one-time link."));
}

async function login(code) {
  const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }) });
  const v = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(v.message || "login failed");
  state.token = v.token;
  sessionStorage.setItem("kith-token", v.token);
}

// Reads the event stream with fetch (it sends the token header, which
// EventSource cannot) and reconnects after a pause if it drops. The node
// sends a keep-alive every 15 s: a stream silent for longer than
// STREAM_SILENCE_MS is taken for dead (a node that stopped without closing
// it), so the header never says "live" about a node that is gone.
const STREAM_SILENCE_MS = 35000;

async function listen() {
  const netstate = document.getElementById("netstate");
  for (;;) {
    const abort = new AbortController();
    let watchdog = null;
    const heard = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => abort.abort(), STREAM_SILENCE_MS);
    };
    try {
      const r = await fetch("/api/events", { headers: { Authorization: "Bearer " + state.token, Accept: "text/event-stream" }, signal: abort.signal });
      if (!r.ok || !r.body) throw new Error("no stream");
      netstate.textContent = "live";
      heard();
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        heard();
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch (_) {
      // fall through to the pause
    } finally {
      clearTimeout(watchdog);
    }
    netstate.textContent = "offline";
    await new Promise((res) => setTimeout(res, 2000));
    if (!state.token) return;
  }
}

function onEvent(ev) {
  const v = state.view || {};
  switch (ev.type) {
    case "post":
      if (v.kind === "home") prependNewest({ home: true }).catch(() => {});
      else if (v.kind === "group" && ev.space === v.id) prependNewest({ group: v.id }).catch(() => {});
      else if (v.kind === "person" && ev.author === v.id && ev.space === "public") prependNewest({ author: v.id }).catch(() => {});
      else if (v.kind === "thread") threadView(v.id);
      break;
    case "edit":
    case "delete":
      refreshPost(ev.id);
      break;
    case "reaction":
      refreshPost(ev.post);
      break;
    case "membership":
      loadGroupNames();
      if (v.kind === "group" && v.id === ev.group) groupView(v.id);
      else if (v.kind === "groups") groupsView();
      break;
    case "peer_up":
    case "peer_down":
      if (v.kind === "peers") peersView();
      break;
    case "sync": {
      const bar = document.getElementById("sync");
      bar.hidden = !ev.syncing;
      document.getElementById("sync-bar").max = Math.max(ev.expected, 1);
      document.getElementById("sync-bar").value = ev.received;
      document.getElementById("sync-text").textContent = "Catching up: " + ev.received + " / " + ev.expected + " changes";
      break;
    }
    case "resync":
      route();
      break;
    default:
      break;
  }
}

async function start() {
  const m = location.hash.match(/^#login=([a-z0-9]+)$/);
  if (m) {
    history.replaceState(null, "", "/#/");
    try {
      await login(m[1]);
    } catch (e) {
      showLoggedOut();
      toast(e.message, true);
      return;
    }
  }
  if (!state.token) return showLoggedOut();
  try {
    state.me = await api("GET", "/api/whoami");
  } catch (_) {
    return;
  }
  await loadGroupNames();
  window.addEventListener("hashchange", route);
  route();
  listen();
}

start();
