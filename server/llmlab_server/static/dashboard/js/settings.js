// Settings pages: projects (?view=projects: create, rename, delete, invitations for you),
// members and roles with invitations (?view=members), API keys (?view=keys: create, shown
// once, revoke). Each reads and writes the same scoped routes as the API's own clients.

import { request, send } from "./api.js";
import { $, el } from "./dom.js";
import { remember } from "./onboarding.js";
import { button, canManage, confirmButton, describe, fillTable, forgetSecret, group, onSubmit,
         projectFieldCell, showSecret, tableFailed, tableLoading, when } from "./ui.js";
import { fillZoneList, zoneCell } from "./zones.js";

const ROLES = ["owner", "admin", "member", "viewer"];
let ctx = null;

// -- projects -----------------------------------------------------------------------------

export async function showProjects(context) {
  ctx = context;
  fillZoneList();
  await Promise.all([loadProjects(context), loadMyInvitations(context)]);
}

function renameCell(project, context) {
  return projectFieldCell(project, context, loadProjects, {
    field: "name", value: project.name, className: "rename", buttonText: "Rename",
    buttonLabel: `Rename ${project.name}`, inputLabel: `New name of ${project.name}`,
    maxLength: 128,
  });
}

async function loadProjects(context) {
  const table = $("m-projects");
  tableLoading(table);
  try {
    const projects = await request("/api/projects");
    if (!context.live()) return;
    fillTable(table, ["Name", "Slug", "Time zone", "Your role", "Created (UTC)", ""], projects.map((p) => {
      const open = button("Open", () => context.navigate(context.href({
        project: String(p.id), view: "overview", key: "", filters: {} })), "secondary",
        `Open ${p.name}`);
      const remove = p.role === "owner" ? confirmButton("Delete", async () => {
        await send("DELETE", `/api/projects/${p.id}`);
        await context.reloadProjects();
        await loadProjects(context);
      }, `Delete ${p.name} and all its data`) : null;
      const row = [renameCell(p, context), p.slug, zoneCell(p, context, loadProjects), p.role || "—",
                   when(p.created_at), group(open, remove)];
      row.id = p.id;
      return row;
    }), "No projects yet: create the first one with the form below.");
  } catch (err) {
    if (context.live() && err.status !== 401) tableFailed(table, err, () => loadProjects(context));
  }
}

async function loadMyInvitations(context) {
  const table = $("m-my-invitations");
  try {
    const invitations = await request("/api/invitations");
    if (!context.live()) return;
    $("my-invitations-panel").hidden = !invitations.length;
    fillTable(table, ["Project", "Role", "Invited by", "Sent (UTC)", ""], invitations.map((i) => [
      i.project.name, i.role, i.invited_by, when(i.created_at), group(
        button("Accept", async () => {
          await send("POST", `/api/invitations/${i.id}/accept`);
          await context.reloadProjects();
          context.navigate(context.href({ project: String(i.project.id), view: "projects", key: "" }));
        }, "", `Accept the invitation to ${i.project.name}`),
        button("Decline", async () => {
          await send("POST", `/api/invitations/${i.id}/decline`);
          await loadMyInvitations(context);
        }, "secondary", `Decline the invitation to ${i.project.name}`))]), "No invitations.");
  } catch (err) {
    if (!context.live() || err.status === 401) return;
    if (err.code === "email_unverified") {
      $("verify-panel").hidden = false;
      $("my-invitations-panel").hidden = true;
      return;
    }
    tableFailed(table, err, () => loadMyInvitations(context));
  }
}

// -- members --------------------------------------------------------------------------------

export async function showMembers(context) {
  ctx = context;
  $("invite-form").hidden = !canManage(context.info);
  await Promise.all([loadMembers(context), loadInvitations(context)]);
}

function roleControl(member, context) {
  if (!canManage(context.info)) return member.role;
  const select = el("select");
  select.setAttribute("aria-label", `Role of ${member.email}`);
  for (const role of ROLES) {
    const option = select.appendChild(el("option", null, role));
    option.value = role;
  }
  select.value = member.role;
  select.addEventListener("change", async () => {
    try {
      await send("PATCH", `/api/projects/${context.project}/members/${member.user_id}`, { role: select.value });
      context.notice("");
    } catch (err) {
      select.value = member.role;
      if (err.status !== 401) context.notice(`Role not changed: ${describe(err)}`);
    }
  });
  return select;
}

async function loadMembers(context) {
  const table = $("m-members");
  tableLoading(table);
  try {
    const members = await request(`/api/projects/${context.project}/members`);
    if (!context.live()) return;
    fillTable(table, ["Email", "Name", "Role", "Since (UTC)", ""], members.map((m) => [
      m.email, m.name, roleControl(m, context), when(m.created_at),
      canManage(context.info) ? confirmButton("Remove", async () => {
        await send("DELETE", `/api/projects/${context.project}/members/${m.user_id}`);
        await loadMembers(context);
      }, `Remove ${m.email}`) : ""]), "No members.");
  } catch (err) {
    if (context.live() && err.status !== 401) tableFailed(table, err, () => loadMembers(context));
  }
}

async function loadInvitations(context) {
  const table = $("m-invitations");
  if (!canManage(context.info)) {
    fillTable(table, [], [], "Admins and owners see the pending invitations.");
    return;
  }
  tableLoading(table);
  try {
    const invitations = await request(`/api/projects/${context.project}/invitations`);
    if (!context.live()) return;
    fillTable(table, ["Email", "Role", "Sent (UTC)", ""], invitations.map((i) => [
      i.email, i.role, when(i.created_at), confirmButton("Withdraw", async () => {
        await send("DELETE", `/api/projects/${context.project}/invitations/${i.id}`);
        await loadInvitations(context);
      }, `Withdraw the invitation of ${i.email}`)]),
    "No pending invitations: invite someone with the form above.");
  } catch (err) {
    if (context.live() && err.status !== 401) tableFailed(table, err, () => loadInvitations(context));
  }
}

// -- API keys -------------------------------------------------------------------------------

export async function showKeys(context) {
  ctx = context;
  $("key-form").hidden = !canManage(context.info);
  await loadKeys(context);
}

async function loadKeys(context) {
  const table = $("m-keys");
  if (!canManage(context.info)) {
    fillTable(table, [], [], "Only admins and owners of this project see its keys.");
    return;
  }
  tableLoading(table);
  try {
    const keys = await request("/api/keys", { project: context.project });
    if (!context.live()) return;
    fillTable(table, ["Name", "Key", "Scopes", "Created (UTC)", "Last used", "Status", ""], keys.map((k) => {
      const row = [k.name, `${k.prefix}…`, k.scopes.join(", "), when(k.created_at), when(k.last_used_at),
        k.revoked_at ? `revoked ${when(k.revoked_at)}` : "active",
        k.revoked_at ? "" : confirmButton("Revoke", async () => {
          await send("DELETE", `/api/keys/${k.id}`);
          await loadKeys(context);
        }, `Revoke ${k.name}`)];
      row.id = k.id;
      return row;
    }), "No keys yet: create one with the form above.");
  } catch (err) {
    if (context.live() && err.status !== 401) tableFailed(table, err, () => loadKeys(context));
  }
}

/** Wire the static forms once (``ctx`` is the page shown now). */
export function wire() {
  onSubmit($("project-form"), "p-error", async () => {
    const slug = $("p-slug").value.trim();
    const project = await send("POST", "/api/projects", { name: $("p-name").value.trim(),
                                                          timezone: $("p-timezone").value.trim() || "UTC",
                                                          ...(slug ? { slug } : {}) });
    // A new project's ingest key, shown once on its onboarding page.
    const key = await send("POST", "/api/keys", { project_id: project.id, name: "ingest",
                                                  scopes: ["ingest"] });
    remember(project.id, key.key);
    $("p-name").value = "";
    $("p-slug").value = "";
    $("p-timezone").value = "UTC";
    await ctx.reloadProjects();
    ctx.navigate(ctx.href({ project: String(project.id), view: "overview", key: "", filters: {} }));
  });
  onSubmit($("verify-form"), "v-error", async () => {
    await send("POST", "/api/auth/verify-email", { token: $("v-token").value.trim() });
    $("v-token").value = "";
    $("verify-panel").hidden = true;
    await loadMyInvitations(ctx);
  });
  $("v-resend").addEventListener("click", async () => {
    $("v-error").textContent = "";
    try {
      await send("POST", "/api/auth/verify-email/resend");
      $("v-error").textContent = "Sent: check your mail.";
    } catch (err) {
      if (err.status !== 401) $("v-error").textContent = describe(err);
    }
  });
  onSubmit($("invite-form"), "i-error", async () => {
    await send("POST", `/api/projects/${ctx.project}/members`, { email: $("i-email").value.trim(),
                                                                 role: $("i-role").value });
    $("i-email").value = "";
    ctx.notice("Invitation sent: they join when they accept it (Projects page, after signing in).");
    await loadInvitations(ctx);
  });
  onSubmit($("key-form"), "k-error", async () => {
    const scopes = [...$("key-form").querySelectorAll("input[name=scope]:checked")].map((i) => i.value);
    if (!scopes.length) throw new Error("Pick at least one scope.");
    const key = await send("POST", "/api/keys", { project_id: Number(ctx.project),
                                                  name: $("k-name").value.trim(), scopes });
    showSecret($("k-new"), key.key);
    await loadKeys(ctx);
  });
  $("k-done").addEventListener("click", () => forgetSecret($("k-new")));
}

/** Leaving the keys page forgets a key shown once. */
export function leave() {
  forgetSecret($("k-new"));
}
