// What a web page needs, as one ES module the ledger serves at `GET /sdk.js` (built by
// `npm run bundle` into browser/sdk.js, committed, and checked against a fresh build by the test
// suite): the signup form binding. No secret-token client and no verifier: those are for servers
// and inspectors (the npm package).

export { bindSignupForm, SIGNUP_EVENTS } from "./signup.js";
export type { SignupFormOptions, SignupBinding, Signup, SignupRecorded } from "./signup.js";
