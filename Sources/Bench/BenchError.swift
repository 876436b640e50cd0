/// A benchmark that cannot run as asked (bad option values, a child that failed), worded for the
/// person running `collm bench`.
package struct BenchError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
