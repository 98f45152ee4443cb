import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { round } from "./stats.ts";

export interface PeerResult {
  hosts: number;
  slots: number;
  deployMs: number;
  wallMs: number;
  idealMs: number;
  ratio: number;
}

/** Installs Ansible from Debian when missing (the bench's only extra dependency). */
export function ensureAnsible(): boolean {
  if (Bun.which("ansible-playbook")) return true;
  const sudo = process.getuid?.() === 0 ? [] : ["sudo", "-n"];
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = Bun.spawnSync([...sudo, "apt-get", "update", "-qq"], { env, stdout: "ignore", stderr: "ignore" });
  const install = Bun.spawnSync([...sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "ansible"], {
    env,
    stdout: "ignore",
    stderr: "inherit",
  });
  return update.exitCode === 0 && install.exitCode === 0 && Bun.which("ansible-playbook") !== null;
}

/**
 * The same rolling deploy with Ansible: N local-connection hosts, `serial: S`, a task that
 * sleeps D ms. Wall time of ansible-playbook itself (its start-up included, as a user sees it).
 */
export function ansibleRollout(hosts: number, slots: number, deployMs: number): PeerResult {
  const dir = mkdtempSync(join(tmpdir(), "conveyor-ansible-"));
  try {
    const inventory = [
      "[fleet]",
      ...Array.from({ length: hosts }, (_, i) => `h${i + 1} ansible_connection=local ansible_python_interpreter=/usr/bin/python3`),
    ].join("\n");
    writeFileSync(join(dir, "inventory.ini"), `${inventory}\n`);
    writeFileSync(
      join(dir, "play.yml"),
      [
        "- hosts: fleet",
        "  gather_facts: false",
        `  serial: ${slots}`,
        "  tasks:",
        "    - name: deploy",
        `      ansible.builtin.command: sleep ${deployMs / 1000}`,
        "",
      ].join("\n"),
    );
    const t0 = performance.now();
    const run = Bun.spawnSync(["ansible-playbook", "-i", "inventory.ini", "-f", String(Math.max(slots, 5)), "play.yml"], {
      cwd: dir,
      env: {
        ...process.env,
        ANSIBLE_HOST_KEY_CHECKING: "False",
        ANSIBLE_NOCOLOR: "1",
        ANSIBLE_LOCAL_TEMP: join(dir, "tmp"),
        ANSIBLE_REMOTE_TEMP: join(dir, "rtmp"),
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const wallMs = performance.now() - t0;
    if (run.exitCode !== 0)
      throw new Error(`ansible-playbook failed: ${run.stdout.toString().slice(-500)}${run.stderr.toString().slice(-500)}`);
    const idealMs = Math.ceil(hosts / slots) * deployMs;
    return { hosts, slots, deployMs, wallMs: round(wallMs), idealMs, ratio: round(wallMs / idealMs, 3) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
