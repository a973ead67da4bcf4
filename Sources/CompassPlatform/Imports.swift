// The library reads FoundationEssentials where the toolchain has it: no ICU data, faster start.
#if canImport(FoundationEssentials)
    @_exported import FoundationEssentials
#else
    @_exported import Foundation
#endif
