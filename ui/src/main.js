import { createApp } from 'vue'

import App from './App.vue'
import { i18n } from './lib/i18n.js'
import { makeRouter } from './router.js'
import './styles.css'

createApp(App).use(i18n).use(makeRouter()).mount('#app')
