"""The example ``workflow`` queue: the seed's generic job types on the shared queue layer.

Declared in ``services.workflow.queue``; ``python -m services.workflow.worker`` runs its worker.
"""
