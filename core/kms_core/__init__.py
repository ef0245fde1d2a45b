"""KubeKMS core: key model, cryptography, sealing and stores shared by the API and the operator.

Security property: this package is the only place that ever holds unsealed key material; it
never imports kopf or aiohttp, so neither framework can reach material except through it.
"""
