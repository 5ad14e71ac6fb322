// Runs an admin tool's `main` in-process with console output captured.

/** What a captured run printed: stdout, stderr, and both in order. */
export interface Captured {
  code: number;
  out: string[];
  err: string[];
  all: string[];
}

export async function captured(run: () => Promise<number>): Promise<Captured> {
  const out: string[] = [];
  const err: string[] = [];
  const all: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => {
    out.push(a.join(" "));
    all.push(a.join(" "));
  };
  console.error = (...a: unknown[]) => {
    err.push(a.join(" "));
    all.push(a.join(" "));
  };
  try {
    return { code: await run(), out, err, all };
  } finally {
    console.log = log;
    console.error = error;
  }
}
