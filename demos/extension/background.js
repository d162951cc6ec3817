// The extension's service worker: the context menu and the toolbar button. It never loads the
// model: an MV3 service worker may not import() modules and is stopped when idle, so the model
// lives in the side panel page (sidepanel.js). The selected text reaches the panel through
// chrome.storage.session, which the panel watches, so that a panel opened by the click finds it
// as well as one already open.

const MENU_ID = 'webformers-classify';

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.create({ id: MENU_ID, title: 'Classify with webformers', contexts: ['selection'] });
});

// The toolbar button opens the panel (and grants activeTab, for the panel's selection button).
chrome.sidePanel.setPanelBehavior({ openPanelOnActionClick: true }).catch((e) => console.warn('setPanelBehavior:', e));

/** Hands `text` to the side panel; `tab`: where to open the panel (the menu's tab). */
async function classifyInPanel(text, tab) {
  // sidePanel.open must run in the click's user gesture: before any await.
  const opened = tab?.windowId !== undefined ? chrome.sidePanel.open({ windowId: tab.windowId }) : Promise.resolve();
  await chrome.storage.session.set({ selection: { text, at: Date.now() } });
  await opened.catch((e) => console.warn('sidePanel.open:', e?.message ?? e));
}

chrome.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId === MENU_ID && info.selectionText) classifyInPanel(info.selectionText, tab);
});

// For the extension's test (npm/test/extension.test.mjs), which cannot click a context menu.
globalThis.classifyInPanel = classifyInPanel;
