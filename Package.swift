// swift-tools-version: 6.0
import PackageDescription

// Layers depend downward only (DESIGN.md section 4):
//   collm (CLI) -> CollabCore (wire codec, protocol) -> LLM (engine) -> CKernels (C hot loops)
let kernelFlags: [CSetting] = [
    // Kernels are built optimized in every configuration: debug test runs would crawl otherwise.
    .unsafeFlags(["-O3", "-fno-math-errno", "-ffp-contract=fast"]),
]

let package = Package(
    name: "CECoLLM",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "collm", targets: ["collm"]),
        .library(name: "LLM", targets: ["LLM"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(name: "CKernels", cSettings: kernelFlags),
        .target(
            name: "LLM",
            dependencies: [
                "CKernels",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "CollabCore", dependencies: ["LLM", "CKernels"]),
        .executableTarget(
            name: "collm",
            dependencies: [
                "LLM",
                "CollabCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "KernelTests", dependencies: ["CKernels"]),
        .testTarget(name: "LLMTests", dependencies: ["LLM", "CKernels"]),
        .testTarget(name: "CollabCoreTests", dependencies: ["CollabCore", "LLM"]),
    ]
)
