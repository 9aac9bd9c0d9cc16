"""The delivery function: a trigger's event source mapping in, the tenant's function out."""
