"""Multicast for EKS pods: the pods' network chain, the node's boot steps and the manifests.

Nothing here imports the CDK: the stacks read these values, and the tests run the chain for real.
"""
