import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SHA-256 of files, streamed in fixed-size chunks (1 MiB by default) so a 100 MB model never sits in memory.
public enum FileDigest {
    public static let defaultChunkSize = 1 << 20

    /// Lower-case hex SHA-256 of the file's bytes.
    public static func sha256Hex(ofFileAt path: String, chunkSize: Int = defaultChunkSize) throws -> String {
        precondition(chunkSize > 0)
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ModelStoreError.io("cannot open \(path) for hashing: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress, chunkSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw ModelStoreError.io("error reading \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hex(hasher.finalize())
    }

    /// Lower-case hex SHA-256 of in-memory bytes.
    public static func sha256Hex(of data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Size in bytes of a regular file, nil if it does not exist (or is not a regular file).
    public static func fileSize(atPath path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(st.st_size)
    }

    /// Modification time in seconds (with sub-second precision), nil if the file does not exist.
    static func modificationTime(atPath path: String) -> Double? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        #if canImport(Darwin)
        return Double(st.st_mtimespec.tv_sec) + Double(st.st_mtimespec.tv_nsec) * 1e-9
        #else
        return Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) * 1e-9
        #endif
    }
}
