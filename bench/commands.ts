/** Outside programs the benchmarks drive (peers, load clients): found on the PATH, or installed from Debian. */
import { spawnSync } from 'node:child_process';

/**
 * Whether `command` runs (`probe` its harmless arguments), after `apt-get install -y <debianPackage>` if it did not;
 * when it cannot be had, the reason is printed and the answer is false.
 */
export function commandAvailable(command: string, probe: string[], debianPackage: string): boolean {
  const runs = () => !spawnSync(command, probe).error;
  if (runs()) return true;
  console.log(`${command} is missing: running \`apt-get install -y ${debianPackage}\``);
  const install = spawnSync('apt-get', ['install', '-y', debianPackage], { stdio: 'inherit' });
  if (install.status === 0 && runs()) return true;
  console.log(
    `${command} unavailable: apt-get install -y ${debianPackage} failed (${install.error?.message ?? `exit status ${install.status}`})`,
  );
  return false;
}
