import CUDA
import Foundation
import Testing

/// Whether this machine has the NVIDIA driver (the GPU machine does; CI and the build
/// machines do not): the tests below that need one or the other say so when skipped.
let driverLoads: Bool = (try? CUDADriver()) != nil

@Suite struct DeviceRequestTests {
    @Test(arguments: [("auto", DeviceRequest.auto), ("cpu", .cpu), ("cuda", .cuda(0)), ("cuda:0", .cuda(0)), ("cuda:3", .cuda(3))])
    func parses(text: String, request: DeviceRequest) {
        #expect(DeviceRequest(text) == request)
    }

    @Test(arguments: ["", "gpu", "cuda:", "cuda:-1", "cuda:x", "CUDA", "cpu:0"])
    func refuses(text: String) {
        #expect(DeviceRequest(text) == nil)
    }
}

@Suite struct CUDAWithoutADriverTests {
    /// On a machine without the NVIDIA driver, `--device cuda` names what is missing, and
    /// `auto` runs on the CPU saying why.
    @Test(.enabled(if: !driverLoads, "this machine has the NVIDIA driver; the GPU tests cover it"))
    func cudaNamesWhatIsMissingAndAutoFallsBack() throws {
        let probe = CUDAProbe(search: CUDALibrarySearch(explicitFolders: ["/nonexistent"]))
        guard case .failure(let error) = probe.driver else { Issue.record("no driver expected"); return }
        #expect(error.description.hasPrefix("the NVIDIA driver (libcuda.so.1) not found: tried /nonexistent/libcuda.so.1, "),
                "\(error)")
        do {
            _ = try DeviceChoice.choose(.cuda(0), probe: probe)
            Issue.record("cuda chosen without a driver")
        } catch {
            #expect(error.description.hasPrefix("--device cuda:0: no usable GPU: the NVIDIA driver (libcuda.so.1) not found"), "\(error)")
            #expect(error.description.hasSuffix("Use --device cpu or auto."))
        }
        let auto = try DeviceChoice.choose(.auto, probe: probe)
        #expect(auto.device == .cpu && auto.label == "cpu")
        #expect(auto.reason.hasPrefix("no usable GPU: the NVIDIA driver (libcuda.so.1) not found"), "\(auto.reason)")
        #expect(try DeviceChoice.choose(.cpu, probe: probe).reason == "asked for the CPU")
        #expect(probe.report.first?.hasPrefix("cuda driver: the NVIDIA driver (libcuda.so.1) not found") == true)
    }

    @Test func searchLooksInExplicitFoldersFirstThenTheLoaderPath() {
        let search = CUDALibrarySearch(explicitFolders: ["/opt/a", ""])
        #expect(search.explicitFolders.first == "/opt/a")
        #expect(!search.explicitFolders.contains(""))
    }
}
