// Page-side help for local folders: the directory picker and dropped
// folders. What comes out is a source for the worker's `open`:
// {kind: 'handle', handle} or {kind: 'files', name, files, paths}.

export function canPickDirectory() {
  return typeof window.showDirectoryPicker === 'function';
}

/** Asks for a folder; resolves to its handle (null if cancelled). */
export async function pickDirectory() {
  try {
    return await window.showDirectoryPicker({ id: 'snapkeep-repo', mode: 'read' });
  } catch (e) {
    if (e && e.name === 'AbortError') return null;
    throw e;
  }
}

function readBatch(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

/** Every file under a FileSystemDirectoryEntry, with paths starting at its name. */
async function walkEntry(root) {
  const files = [];
  const paths = [];
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop();
    const reader = dir.createReader();
    for (;;) {
      const batch = await readBatch(reader);
      if (batch.length === 0) break;
      for (const e of batch) {
        if (e.name.startsWith('.tmp-')) continue;
        if (e.isDirectory) stack.push(e);
        else if (e.isFile) {
          files.push(await fileOf(e));
          paths.push(e.fullPath.replace(/^\/+/, ''));
        }
      }
    }
  }
  return { files, paths };
}

/**
 * Reads a drop's DataTransfer. Must be called inside the drop event: the
 * items are only readable until it returns, so every handle and entry is
 * asked for before the first await.
 */
export function collectDrop(dataTransfer) {
  const items = [...(dataTransfer.items || [])].filter((i) => i.kind === 'file');
  const handles = items.map((i) => (typeof i.getAsFileSystemHandle === 'function' ? i.getAsFileSystemHandle() : null));
  const entries = items.map((i) => (typeof i.webkitGetAsEntry === 'function' ? i.webkitGetAsEntry() : null));
  return (async () => {
    if (items.length === 0) throw new Error('nothing was dropped; drop the repository folder itself');
    if (items.length > 1) throw new Error('drop one folder (the repository folder), not several items');
    let handle = null;
    try {
      handle = handles[0] ? await handles[0] : null;
    } catch {
      handle = null;
    }
    if (handle && handle.kind === 'directory') return { kind: 'handle', handle };
    const entry = entries[0];
    if (entry && entry.isDirectory) {
      const { files, paths } = await walkEntry(entry);
      if (files.length === 0) throw new Error(`the folder ${entry.name} is empty: there is no snapkeep repository in it`);
      return { kind: 'files', name: entry.name, files, paths };
    }
    throw new Error('that is a file: drop the repository folder (the one holding config, index/ and packs/)');
  })();
}
