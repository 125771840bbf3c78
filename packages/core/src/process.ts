/** Whether a process exists on this host (EPERM: it exists but belongs to someone else). Lock holders are checked with it. */
export const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};
