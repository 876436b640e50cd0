import CKernels

/// Gives freed heap pages back to the system. glibc keeps freed KV caches in its arenas, so without
/// this a server's resident memory stays at its peak after the sessions that needed it are gone.
public enum MemoryRelease {
    public static func returnFreedPages() { ck_release_free_memory() }
}
