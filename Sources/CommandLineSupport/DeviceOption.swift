import ArgumentParser
import CUDA
import Foundation

/// `--device auto|cpu|cuda[:N]`, shared by the commands that train or generate (synthd's and
/// synthd-bench's).
public struct DeviceOption: ParsableArguments {
    @Option(help: ArgumentHelp("Where to compute: \(DeviceRequest.help). auto: the GPU when one is usable, else the CPU.",
                               valueName: "device"))
    public var device = "auto"

    @Option(help: "A folder to look for CUDA's libraries in first (libnvrtc, libcublas; also SYNTHD_CUDA_LIBRARIES).")
    public var cudaLibraries: String?

    public init() {}

    public func validate() throws {
        guard DeviceRequest(device) != nil else { throw ValidationError("--device must be \(DeviceRequest.help), not '\(device)'") }
    }

    /// The device, said on standard error with the reason; exits with EX_UNAVAILABLE (69) and
    /// what is missing when an explicit GPU request cannot be met.
    public func choose() throws -> DeviceChoice {
        let search = CUDALibrarySearch(explicitFolders: cudaLibraries.map { [$0] } ?? [])
        do {
            let choice = try DeviceChoice.choose(DeviceRequest(device)!, probe: CUDAProbe(search: search))
            FileHandle.standardError.write(Data("device: \(choice.label) (\(choice.reason))\n".utf8))
            return choice
        } catch {
            FileHandle.standardError.write(Data("synthd: \(error)\n".utf8))
            throw ExitCode(DeviceChoice.unavailableExitStatus)
        }
    }
}
