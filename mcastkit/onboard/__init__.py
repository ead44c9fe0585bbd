"""Customer onboarding: the customer's hand-off kit and the provider/customer AWS commands.

``kit`` builds what a provider sends a customer; ``join`` runs in the customer account;
``accept`` and ``status`` run in the provider account. Every AWS call goes through
:mod:`mcastkit.onboard.aws`, which turns botocore failures into one-line messages.
"""
