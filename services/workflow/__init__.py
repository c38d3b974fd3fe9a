"""The example ``workflow`` queue: generic job types (workflows, variable updates, statistics) on
the shared queue layer.

Declared in ``services.workflow.queue``; ``python -m services.workflow.worker`` runs its worker.
"""
