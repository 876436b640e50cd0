import CKernels

/// Gives freed heap pages back to the system. glibc keeps freed KV caches in its arenas, so without
/// this a server's resident memory stays at its peak after the sessions that needed it are gone.
public enum MemoryRelease {
    public static func returnFreedPages() { ck_release_free_memory() }

    /// For a long-running server: buffers of at least `bytes` (KV caches, uploaded states, payloads)
    /// get their own mappings, so freeing them returns their memory at once, whichever thread freed them.
    public static func mapLargeAllocations(atLeast bytes: Int = 256 << 10) { ck_map_large_allocations(bytes) }
}
