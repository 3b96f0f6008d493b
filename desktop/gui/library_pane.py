"""The library: collections, their folders with document counts, files with problems, and files
whose OCR was weak (worth checking against the original for misread words)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.core.workspace import DEFAULT_COLLECTION
from desktop.gui.open_file import open_at_page

if TYPE_CHECKING:
    from desktop.core.storage.library import CollectionSummary, LibrarySummary

_ROLE = Qt.ItemDataRole.UserRole


def _status_line(by_status: dict[str, int]) -> str:
    return ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(by_status.items()))


def _weak_ocr_item(coll: CollectionSummary) -> QTreeWidgetItem:
    """"Weak OCR (n)" over one "weak OCR 55%: name" row per file OCR read poorly."""
    top = QTreeWidgetItem([f"Weak OCR ({len(coll.weak_ocr)})", "", ""])
    top.setToolTip(0, "Files OCR read with a low confidence: check them against the original "
                      "for misread words (right-click to open one)")
    top.setData(0, _ROLE, ("weak_ocr", coll.name))
    for weak in coll.weak_ocr:
        name = weak.path.rsplit("/", 1)[-1]
        child = QTreeWidgetItem([f"weak OCR {weak.confidence:.0%}: {name}", "", ""])
        pages = "1 page" if weak.pages == 1 else f"{weak.pages} pages"
        child.setToolTip(0, f"{weak.path}\nRead by OCR ({pages}) with a mean word confidence "
                            f"of {weak.confidence:.0%}: check the original for misread words")
        child.setData(0, _ROLE, ("weak", coll.name, weak.path))
        top.addChild(child)
    return top


def _span(item: QTreeWidgetItem) -> None:
    """Let ``item`` and its children, rows without counts, take the whole width (once the
    item is in the tree: spanning is the view's)."""
    item.setFirstColumnSpanned(True)
    for i in range(item.childCount()):
        item.child(i).setFirstColumnSpanned(True)


class LibraryPane(QWidget):
    """Lists what is indexed; the combo box chooses the collection new folders go to."""

    collection_changed = Signal(str)
    add_folder_requested = Signal()
    new_collection_requested = Signal()
    forget_requested = Signal(str, str)  # collection, folder ("" for the whole collection)
    rescan_requested = Signal()
    opened = Signal(str)  # a status line: how a file was opened

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.current = DEFAULT_COLLECTION
        self.summary: LibrarySummary | None = None
        self.collections = QComboBox(self)
        self.collections.setToolTip("The collection new folders are added to, and answers "
                                    "come from")
        self.collections.currentTextChanged.connect(self._on_combo)
        new = QPushButton("New…", self)
        new.setToolTip("New collection (Ctrl+N)")
        new.clicked.connect(self.new_collection_requested)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Folder", "Docs", "Chunks"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keep the folder's name
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.tree.itemClicked.connect(self._on_item)
        add = QPushButton("Add folder…", self)
        add.setToolTip("Add a folder to this collection (Ctrl+O); or drop one on the window")
        add.clicked.connect(self.add_folder_requested)
        self.totals = QLabel(self)
        self.totals.setWordWrap(True)
        self.totals.setObjectName("totals")
        top = QHBoxLayout()
        top.addWidget(QLabel("Collection", self))
        top.addWidget(self.collections, 1)
        top.addWidget(new)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.totals)
        layout.addWidget(add)
        self._set_names([DEFAULT_COLLECTION])

    # -- state ----------------------------------------------------------------------------

    def set_current(self, name: str) -> None:
        if name != self.current:
            self.current = name
            if self.collections.findText(name) < 0:
                self.collections.addItem(name)
            self.collections.setCurrentText(name)
            self.collection_changed.emit(name)

    def _set_names(self, names: list[str]) -> None:
        self.collections.blockSignals(True)
        self.collections.clear()
        self.collections.addItems(names)
        self.collections.setCurrentText(self.current)
        self.collections.blockSignals(False)

    def _on_combo(self, name: str) -> None:
        if name and name != self.current:
            self.current = name
            self.collection_changed.emit(name)

    def _on_item(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, _ROLE)
        if data and data[0] == "collection":
            self.set_current(data[1])

    def update_summary(self, summary: LibrarySummary) -> None:
        """Show a new summary, keeping which collections were expanded."""
        self.summary = summary
        names = [c.name for c in summary.collections]
        if self.current not in names:
            names.append(self.current)
        self._set_names(sorted(names))
        expanded = {self.tree.topLevelItem(i).text(0) for i in range(self.tree.topLevelItemCount())
                    if self.tree.topLevelItem(i).isExpanded()}
        self.tree.clear()
        for coll in summary.collections:
            top = QTreeWidgetItem([coll.name, str(coll.documents), str(coll.chunks)])
            top.setData(0, _ROLE, ("collection", coll.name))
            font = top.font(0)
            font.setBold(coll.name == self.current)
            top.setFont(0, font)
            for root in coll.roots:
                item = QTreeWidgetItem([root.path, str(root.documents), str(root.chunks)])
                item.setData(0, _ROLE, ("folder", coll.name, root.path))
                item.setToolTip(0, f"{root.path}\n{_status_line(root.by_status)}")
                top.addChild(item)
            probs = None
            if coll.problems:
                probs = QTreeWidgetItem([f"Problems ({len(coll.problems)})", "", ""])
                probs.setData(0, _ROLE, ("problems", coll.name))
                for prob in coll.problems:
                    name = prob.path.rsplit("/", 1)[-1]
                    child = QTreeWidgetItem([f"{name}: {prob.reason}", "", ""])
                    child.setToolTip(0, f"{prob.path}\n{prob.status}: {prob.reason}")
                    child.setData(0, _ROLE, ("problem", coll.name, prob.path))
                    probs.addChild(child)
                top.addChild(probs)
            weak = _weak_ocr_item(coll) if coll.weak_ocr else None
            if weak is not None:
                top.addChild(weak)
            if coll.ocr_documents:
                top.setToolTip(0, f"{coll.name}: {coll.ocr_documents} of {coll.documents} "
                                  "documents read by OCR")
            self.tree.addTopLevelItem(top)
            for rows in (probs, weak):  # rows without counts: the whole width for the reason
                if rows is not None:
                    _span(rows)
            top.setExpanded(coll.name in expanded or coll.name == self.current or not expanded)
        if not summary.collections:
            hint = QTreeWidgetItem(["Nothing indexed yet"])
            hint.setToolTip(0, "Drop a folder on the window, or use Add folder…")
            hint.setFlags(Qt.ItemFlag.NoItemFlags)
            self.tree.addTopLevelItem(hint)
            hint.setFirstColumnSpanned(True)
        mb = summary.database_bytes / 1048576
        self.totals.setText(f"{summary.documents} documents · {summary.chunks} chunks · "
                            f"{mb:.1f} MB")
        cells = "one cell" if summary.vector_cells == 1 else f"{summary.vector_cells} cells"
        self.totals.setToolTip(f"{mb:.1f} MB on disk; searching holds "
                               f"{summary.search_memory_bytes / 1048576:.1f} MB in memory "
                               f"(vectors filed in {cells})")

    def problem_paths(self, collection: str) -> list[str]:
        """The files of ``collection`` listed as problems (for tests and tooltips)."""
        if self.summary is None:
            return []
        return [p.path for c in self.summary.collections if c.name == collection
                for p in c.problems]

    def weak_ocr_paths(self, collection: str) -> list[str]:
        """The files of ``collection`` listed as weak OCR."""
        if self.summary is None:
            return []
        return [w.path for c in self.summary.collections if c.name == collection
                for w in c.weak_ocr]

    # -- actions --------------------------------------------------------------------------

    def _menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        data = item.data(0, _ROLE) if item is not None else None
        menu = QMenu(self)
        if data and data[0] == "weak":
            menu.addAction("Open file to check it",
                           lambda: self.opened.emit(open_at_page(data[2], None)))
        elif data and data[0] == "folder":
            menu.addAction("Forget this folder",
                           lambda: self.forget_requested.emit(data[1], data[2]))
        elif data and data[0] == "collection":
            menu.addAction("Use this collection", lambda: self.set_current(data[1]))
            menu.addAction("Forget this collection",
                           lambda: self.forget_requested.emit(data[1], ""))
        menu.addAction("Re-scan every folder", self.rescan_requested.emit)
        menu.exec(self.tree.viewport().mapToGlobal(pos))
