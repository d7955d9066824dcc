"""The element order that libstdc++'s ``std::sort`` leaves, for orders where it matters.

``std::sort`` is not stable: where equal keys end up depends on the algorithm, libstdc++'s
introsort (median-of-three quicksort down to ranges of 16, a heapsort below a depth limit of
2·floor(log2 n), then one insertion sort). Procgen's StarPilot sorts its spawn list with it,
and ships that spawn in the same step enter the game in that order. :func:`sort_order`
replays the algorithm's moves on the list's indices (plain Python: the lists are short).
"""

from __future__ import annotations

THRESHOLD = 16  # libstdc++'s _S_threshold


def sort_order(keys, less) -> list[int]:
    """The indices of ``keys`` in the order ``std::sort(first, last, comp)`` leaves them,
    ``comp(a, b)`` being ``less(keys[a], keys[b])``."""
    a = list(range(len(keys)))

    def comp(i, j):
        return less(keys[i], keys[j])

    def median_to_first(result, x, y, z):
        if comp(a[x], a[y]):
            if comp(a[y], a[z]):
                a[result], a[y] = a[y], a[result]
            elif comp(a[x], a[z]):
                a[result], a[z] = a[z], a[result]
            else:
                a[result], a[x] = a[x], a[result]
        elif comp(a[x], a[z]):
            a[result], a[x] = a[x], a[result]
        elif comp(a[y], a[z]):
            a[result], a[z] = a[z], a[result]
        else:
            a[result], a[y] = a[y], a[result]

    def partition(first, last, pivot):  # unguarded: the pivot's median bounds both scans
        while True:
            while comp(a[first], a[pivot]):
                first += 1
            last -= 1
            while comp(a[pivot], a[last]):
                last -= 1
            if not first < last:
                return first
            a[first], a[last] = a[last], a[first]
            first += 1

    def push_heap(first, hole, top, value):
        parent = (hole - 1) // 2
        while hole > top and comp(a[first + parent], value):
            a[first + hole] = a[first + parent]
            hole = parent
            parent = (hole - 1) // 2
        a[first + hole] = value

    def adjust_heap(first, hole, length, value):
        top, child = hole, hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if comp(a[first + child], a[first + child - 1]):
                child -= 1
            a[first + hole] = a[first + child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            a[first + hole] = a[first + child - 1]
            hole = child - 1
        push_heap(first, hole, top, value)

    def heapsort(first, last):  # std::partial_sort(first, last, last)
        length = last - first
        if length >= 2:
            for parent in range((length - 2) // 2, -1, -1):
                adjust_heap(first, parent, length, a[first + parent])
        while last - first > 1:
            last -= 1
            value = a[last]
            a[last] = a[first]
            adjust_heap(first, 0, last - first, value)

    def introsort(first, last, depth):
        while last - first > THRESHOLD:
            if depth == 0:
                heapsort(first, last)
                return
            depth -= 1
            median_to_first(first, first + 1, first + (last - first) // 2, last - 1)
            cut = partition(first + 1, last, first)
            introsort(cut, last, depth)
            last = cut

    def linear_insert(i):  # unguarded
        value, j = a[i], i - 1
        while comp(value, a[j]):
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = value

    def insertion_sort(first, last):
        for i in range(first + 1, last):
            if comp(a[i], a[first]):
                value = a[i]
                a[first + 1:i + 1] = a[first:i]
                a[first] = value
            else:
                linear_insert(i)

    n = len(a)
    if n > 1:
        introsort(0, n, 2 * (n.bit_length() - 1))
        if n > THRESHOLD:
            insertion_sort(0, THRESHOLD)
            for i in range(THRESHOLD, n):
                linear_insert(i)
        else:
            insertion_sort(0, n)
    return a
