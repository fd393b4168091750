"""The science core: bump datasets, the conditional UNet, the diffusion math, headless training.

Imports only torch and numpy; never prints, draws or opens sockets (DESIGN §2).
"""
