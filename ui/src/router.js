import { createRouter, createWebHistory } from 'vue-router'

import AlertsView from './views/AlertsView.vue'
import AnalysisView from './views/AnalysisView.vue'
import ChatView from './views/ChatView.vue'
import CollectionsView from './views/CollectionsView.vue'
import NotFoundView from './views/NotFoundView.vue'

export const routes = [
  { path: '/', redirect: '/alerts' },
  { path: '/alerts', name: 'alerts', component: AlertsView, meta: { title: 'nav.alerts' } },
  { path: '/alerts/:id', name: 'analysis', component: AnalysisView, props: true, meta: { title: 'analysis.title' } },
  { path: '/chat', name: 'chat', component: ChatView, meta: { title: 'nav.chat' } },
  { path: '/collections/:name?', name: 'collections', component: CollectionsView, props: true, meta: { title: 'nav.collections' } },
  { path: '/:rest(.*)*', name: 'not-found', component: NotFoundView, meta: { title: 'notFound.title' } },
]

// History mode under /ui/: the gateway answers any /ui/<route> with index.html.
export function makeRouter(history = createWebHistory('/ui/')) {
  return createRouter({ history, routes })
}
