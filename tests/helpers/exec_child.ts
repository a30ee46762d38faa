// Prints its pid, then replaces itself (platform/self.ts replaceProcess) with the argv given
// as arguments; prints the failure and exits 1 if that fails.
import { replaceProcess } from "../../platform/self.ts";

console.log(`pid ${Deno.pid}`);
const error = replaceProcess(Deno.args);
console.log(`failed: ${error.message}`);
Deno.exit(1);
