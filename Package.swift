// swift-tools-version: 6.0
import PackageDescription

// Layers depend downward only (docs/ARCHITECTURE.md section 1; scripts/check-layers.sh):
//   collm (CLI) -> Serve (OpenAI API) | Bench (benchmarks) -> Calibration (exit fitting) | CollabTransport (gRPC)
//   -> ExitTraining (exit blocks' training) | Edge (runners, upload log) | Cloud (context manager, scheduler)
//   -> Exits (heads, adapters, blocks, calibration files, thresholds) -> CollabCore (wire codec, protocol)
//   -> LLM (engine) -> CKernels (C hot loops)
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
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
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
        // Everything an exit needs at inference: heads, adapters, MLP and layer blocks, screens, thresholds,
        // the calibration file and its store.
        .target(
            name: "Exits",
            dependencies: ["CollabCore", "LLM", "CKernels"],
            // The default model's shipped exit calibration (README: "Early exits").
            resources: [.copy("Resources/calibration")]
        ),
        // Trainable exit blocks (issue 6): training with the backbone and LM head frozen.
        .target(name: "ExitTraining", dependencies: ["Exits", "LLM", "CKernels"]),
        .target(name: "Cloud", dependencies: ["CollabCore", "LLM", "CKernels"]),
        .target(name: "Edge", dependencies: ["CollabCore", "Exits", "LLM"]),
        // Exit calibration: data from the full model, ridge adapters, thresholds, reports.
        .target(name: "Calibration", dependencies: ["CollabCore", "Exits", "ExitTraining", "LLM", "CKernels"]),
        // gRPC glue: the cloud service and the edge's stream link.
        .target(
            name: "CollabTransport",
            dependencies: [
                "Cloud", "CollabCore", "CollabProtocol", "LLM",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // The edge's OpenAI-compatible HTTP API and its metrics.
        .target(
            name: "Serve",
            dependencies: [
                "CollabCore", "Edge", "LLM",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The benchmarks behind `collm bench` (collab, scale, load): plans, runners, child processes, records, reports.
        .target(
            name: "Bench",
            dependencies: ["CollabCore", "CollabTransport", "Edge", "Exits", "LLM", "LinkEmulator"]
        ),
        // Edge <-> cloud gRPC protocol: generated code (scripts/generate-protos.sh) + version constants.
        .target(
            name: "CollabProtocol",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // A user-space TCP proxy emulating an edge-cloud link (delay, rate, jitter, cut/restore) for the benchmarks.
        .target(
            name: "LinkEmulator",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "collm",
            dependencies: [
                "LLM",
                "Bench",
                "CollabCore",
                "Cloud",
                "Edge",
                "Calibration",
                "ExitTraining",
                "Exits",
                "Serve",
                "CollabTransport",
                "LinkEmulator",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Coverage-guided fuzzing (scripts/fuzz.sh, README "Fuzzing"): the targets, and a C driver that is
        // libFuzzer's callback in the fuzz build and a replayer in the normal one.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "LLM", "CollabCore", "Cloud", "CollabProtocol", "CollabTransport", "Serve",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(name: "FuzzDriver", dependencies: ["FuzzTargets"]),
        .testTarget(name: "KernelTests", dependencies: ["CKernels", "LLM", "TestSupport"]),
        .testTarget(name: "FuzzTests", dependencies: ["FuzzTargets"]),
        // Shared test fixtures: where the model and data are, the default model and its split parts.
        .target(name: "TestSupport", dependencies: ["Cloud", "Edge", "CollabCore", "LLM"], path: "Tests/TestSupport"),
        .testTarget(name: "LLMTests", dependencies: ["LLM", "CKernels", "TestSupport"]),
        .testTarget(name: "CollabCoreTests", dependencies: ["CollabCore", "LLM"]),
        .testTarget(name: "ExitsTests", dependencies: ["Exits", "CollabCore", "LLM", "TestSupport"]),
        .testTarget(name: "ExitTrainingTests", dependencies: ["ExitTraining", "Exits", "LLM", "CKernels", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["collm", "Bench", "CollabTransport", "CollabCore", "Exits", "LLM", "TestSupport"]),
        .testTarget(name: "CalibrationTests", dependencies: ["Calibration", "CollabCore", "Exits", "ExitTraining", "Edge", "LLM", "CKernels", "TestSupport"]),
        .testTarget(
            name: "LinkEmulatorTests",
            dependencies: [
                "TestSupport",
                "LinkEmulator",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "CloudTests", dependencies: ["Cloud", "CollabCore", "CollabTransport", "LLM", "TestSupport"]),
        .testTarget(name: "EdgeTests", dependencies: ["Edge", "Cloud", "CollabCore", "Exits", "LLM", "TestSupport"]),
        .testTarget(
            name: "CollabProtocolTests",
            dependencies: [
                "CollabProtocol",
                "CollabCore",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ]
        ),
    ]
)
