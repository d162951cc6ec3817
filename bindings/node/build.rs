// napi-build sets the linker flags a Node addon needs on each platform (on macOS, symbols that
// Node provides at load time).
fn main() {
    napi_build::setup();
}
