// Where a command's output goes: stdout as it is produced, or a file written atomically once the
// command has succeeded (so an interrupted or failed run never leaves a half-written file).
import { writeFileAtomic } from "./atomic-write.js";

export interface OutputSink {
  /** true when text written now is seen now (stdout), false when it is buffered (file) */
  readonly live: boolean;
  write(text: string): void;
  /** commits the output; not called when the command fails */
  commit(): Promise<void>;
}

export function stdoutSink(): OutputSink {
  return {
    live: true,
    write: (text) => void process.stdout.write(text),
    commit: () => Promise.resolve(),
  };
}

export function fileSink(file: string): OutputSink {
  const parts: string[] = [];
  return {
    live: false,
    write: (text) => void parts.push(text),
    commit: () => writeFileAtomic(file, parts.join("")),
  };
}

/** Hands results to `emit` in index order, each as soon as it and all before it are ready. */
export function inOrder<T>(emit: (index: number, value: T) => void): (index: number, value: T) => void {
  const ready = new Map<number, T>();
  let next = 0;
  return (index, value) => {
    ready.set(index, value);
    while (ready.has(next)) {
      const v = ready.get(next)!;
      ready.delete(next);
      emit(next++, v);
    }
  };
}
