// Drives the official Infisical Node SDK against a KubeKMS API and prints one JSON object.
// Usage: KUBEKMS_URL=http://127.0.0.1:PORT KUBEKMS_TOKEN=... PROJECT=... node kms_flow.js
"use strict";
const { InfisicalSDK } = require("@infisical/sdk");

async function main() {
  const sdk = new InfisicalSDK({ siteUrl: process.env.KUBEKMS_URL });
  const client = sdk.auth().accessToken(process.env.KUBEKMS_TOKEN);
  const kms = client.kms();
  const projectId = process.env.PROJECT;
  const out = {};

  const aes = await kms.keys().create({
    projectId, name: "node-aes", description: "from node", keyUsage: "encrypt-decrypt",
    encryptionAlgorithm: "aes-256-gcm",
  });
  out.aes = aes;
  out.byName = await kms.keys().getByName({ projectId, name: "node-aes" });
  const plaintext = Buffer.from("hello from node").toString("base64");
  out.plaintext = plaintext;
  out.ciphertext = await kms.encryption().encrypt({ keyId: aes.id, plaintext });
  out.decrypted = await kms.encryption().decrypt({ keyId: aes.id, ciphertext: out.ciphertext });

  const ec = await kms.keys().create({
    projectId, name: "node-ec", keyUsage: "sign-verify", encryptionAlgorithm: "ECC_NIST_P256",
  });
  out.ec = ec;
  out.signingAlgorithms = await kms.signing().listSigningAlgorithms({ keyId: ec.id });
  out.publicKey = await kms.signing().getPublicKey({ keyId: ec.id });
  const data = Buffer.from("sign me").toString("base64");
  out.data = data;
  out.signed = await kms.signing().sign({ keyId: ec.id, data, signingAlgorithm: "ECDSA_SHA_256" });
  out.verified = await kms.signing().verify({
    keyId: ec.id, data, signature: out.signed.signature, signingAlgorithm: "ECDSA_SHA_256",
  });
  out.deleted = await kms.keys().delete({ keyId: aes.id });
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  const detail = err && err.response ? { status: err.response.status, data: err.response.data } : String(err);
  process.stderr.write(JSON.stringify({ error: detail, message: String(err && err.message) }));
  process.exit(1);
});
