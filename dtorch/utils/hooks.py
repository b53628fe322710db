"""``RemovableHandle``: what every ``register_*hook`` returns, for tensor, autograd-node and module hooks alike
(PyTorch's ``torch.utils.hooks.RemovableHandle``). It imports nothing of dtorch, so every layer can use it.

Hooks live in one of two kinds of container: a list (a tensor's and an autograd node's hooks, which the backward
engine runs in order) or an ordered dict keyed by the handle's ``id`` (a module's hooks, which ``prepend`` reorders and
side dicts such as ``with_kwargs`` flag by the same key). ``remove()`` takes the hook out of its container and of
those side dicts; it is idempotent, and the handle is a context manager that removes the hook on exit. An ordered
dict is held weakly (a handle does not keep a module's hook tables alive); lists and plain dicts cannot be, and are
held as they are.
"""

import weakref
from collections import OrderedDict


def _reference(container):
    """A weak reference to ``container``, or a strong one where Python allows no weak one (plain dicts)."""
    try:
        return weakref.ref(container)
    except TypeError:
        return lambda: container


class RemovableHandle:
    """Takes one hook out of the container it was registered in.

    Args:
        hooks: the container: a list (``hook`` is appended to it) or an ordered dict (``hook``, when given, is
            stored under ``handle.id``; callers that reorder or flag the hook store it themselves).
        hook: the hook.
        extra_dicts: dicts that flag the same hook under ``handle.id`` (``with_kwargs``, ``always_call``); cleaned
            up by ``remove()`` too.

    >>> hooks = []
    >>> with RemovableHandle(hooks, print):
    ...     len(hooks)
    1
    >>> hooks
    []
    >>> table = OrderedDict()
    >>> handle = RemovableHandle(table, print)
    >>> list(table) == [handle.id]
    True
    >>> handle.remove(); handle.remove(); len(table)
    0
    """

    next_id = 0

    def __init__(self, hooks, hook=None, *, extra_dicts=()):
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        if isinstance(hooks, list):
            if extra_dicts:
                raise TypeError("extra_dicts go with hooks kept in a dict, not in a list")
            hooks.append(hook)
            self._hook_list, self._hook = hooks, hook
            self.hooks_dict_ref = None
        elif isinstance(hooks, dict):
            if hook is not None:
                hooks[self.id] = hook
            self._hook_list = self._hook = None
            self.hooks_dict_ref = _reference(hooks)
        else:
            raise TypeError(f"hooks should be a list or a dict, got {type(hooks).__name__}")
        self.extra_dicts_ref = tuple(_reference(d) for d in extra_dicts)

    def remove(self):
        """Take the hook out (nothing happens when it is out already)."""
        if self._hook_list is not None:
            for index, registered in enumerate(self._hook_list):
                if registered is self._hook:  # by identity: equal hooks registered twice are two hooks
                    del self._hook_list[index]
                    break
            return
        for reference in (self.hooks_dict_ref,) + self.extra_dicts_ref:
            hooks = reference()
            if hooks is not None and self.id in hooks:
                del hooks[self.id]

    def __getstate__(self):
        if self._hook_list is not None:
            return (self._hook_list, self._hook, self.id)
        # weak references do not pickle: keep the dicts themselves (pickle restores them as the module's own)
        return (self.hooks_dict_ref(), self.id, tuple(reference() for reference in self.extra_dicts_ref))

    def __setstate__(self, state):
        if len(state) == 3 and isinstance(state[0], list):
            self._hook_list, self._hook, self.id = state
            self.hooks_dict_ref, self.extra_dicts_ref = None, ()
        else:
            hooks, self.id, extra = state
            self._hook_list = self._hook = None
            self._kept = [d for d in (hooks, *extra) if d is not None]  # a dict no module holds must stay alive
            self.hooks_dict_ref = _reference(hooks if hooks is not None else self._new_dict())
            self.extra_dicts_ref = tuple(_reference(d if d is not None else self._new_dict()) for d in extra)
        RemovableHandle.next_id = max(RemovableHandle.next_id, self.id + 1)

    def _new_dict(self):
        self._kept.append(OrderedDict())
        return self._kept[-1]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()
